"""What a researcher reads: the headline `make demo` prints, and the HTML report opened in a real browser.

The report test needs Debian's chromium and Playwright for Python (the test extra): `make test`
installs chromium when it runs as root. Elsewhere that test is skipped with the reason, unless
XLPROMPT_REQUIRE_BROWSER=1 (set by .ci/run), where a missing browser is a failure.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from workflow_run import SMOKE, snakemake

from xlprompt.analysis.headline import headline_table
from xlprompt.stages import headline


def tiny_summary(interval: bool) -> pd.DataFrame:
    """summary.csv's shape: two tasks, three methods (a control), two languages, two metrics."""
    accuracy = {  # (task, method) -> (en, far), with the half-width of the interval
        ("topic", "spt"): (0.9126, 0.5, 0.04),
        ("topic", "no_prompt"): (0.34, 0.3333, 0.0),
        ("topic", "full_ft"): (0.95, 0.6049, 0.1),
        ("nli", "spt"): (0.7, 0.4, 0.02),
        ("nli", "no_prompt"): (0.33, 0.32, 0.0),
        ("nli", "full_ft"): (0.8, 0.45, 0.05),
    }
    rows = []
    for (task, method), (en, far, half) in accuracy.items():
        for lang, mean in (("far", far), ("en", en)):  # listed far first: the order comes from languages
            for metric, value in (("accuracy", mean), ("macro_f1", mean - 0.25)):
                row = {
                    "model": "tiny",
                    "task": task,
                    "method": method,
                    "prompt_length": 0 if method == "no_prompt" else 4,
                    "source": "none",
                    "lang": lang,
                    "metric": metric,
                    "mean": value,
                    "std": 0.01,
                    "seeds": 3,
                }
                if interval:
                    row |= {"low": value - half, "high": value + half}
                rows.append(row)
    return pd.DataFrame(rows)


def test_headline_gives_mean_and_interval_per_method_and_language():
    lines = headline_table(tiny_summary(interval=True), languages=["en", "far"]).splitlines()
    assert lines[0] == "nli: test accuracy, mean over seeds [95% interval]"
    assert lines[1].split() == ["en", "far"]
    # methods in the library's order (spt, full_ft, ..., no_prompt), macro_f1 left out
    assert lines[2].split() == ["spt", "L4", "0.700", "[0.680,", "0.720]", "0.400", "[0.380,", "0.420]"]
    assert lines[3].split() == ["full_ft", "L4", "0.800", "[0.750,", "0.850]", "0.450", "[0.400,", "0.500]"]
    assert lines[4].split() == ["no_prompt", "L0", "0.330", "[0.330,", "0.330]", "0.320", "[0.320,", "0.320]"]
    assert lines[5] == ""
    assert lines[6] == "topic: test accuracy, mean over seeds [95% interval]"
    assert lines[8].split() == ["spt", "L4", "0.913", "[0.873,", "0.953]", "0.500", "[0.460,", "0.540]"]
    assert lines[9].split() == ["full_ft", "L4", "0.950", "[0.850,", "1.050]", "0.605", "[0.505,", "0.705]"]
    assert len(lines) == 11


def test_headline_without_interval_columns_prints_the_mean_only():
    text = headline_table(tiny_summary(interval=False))  # no language order: sorted
    blocks = [block.splitlines() for block in text.split("\n\n")]
    assert [block[0] for block in blocks] == [
        "nli: test accuracy, mean over seeds",
        "topic: test accuracy, mean over seeds",
    ]
    assert blocks[1][1].split() == ["en", "far"]
    assert [line.split() for line in blocks[1][2:]] == [
        ["spt", "L4", "0.913", "0.500"],
        ["full_ft", "L4", "0.950", "0.605"],
        ["no_prompt", "L0", "0.340", "0.333"],
    ]
    assert "[" not in text


def test_headline_stage_prints_where_the_results_are(tmp_path, capsys):
    tables = tmp_path / "results" / "demo" / "tables"
    tables.mkdir(parents=True)
    tiny_summary(interval=False).to_csv(tables / "summary.csv", index=False)
    pd.DataFrame({"lang": ["far", "en"], "distance": [0.0, 0.0]}).to_csv(tables / "languages.csv", index=False)
    (tmp_path / "results" / "demo" / "figures").mkdir()
    (tmp_path / "results" / "demo" / "figures" / "heatmap_topic.png").write_bytes(b"png")
    headline.main(["--tables", str(tables)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        f"tables:  {tables}/ (2 CSV files)",
        f"figures: {tables.parent / 'figures'}/ (1 PNG files)",
        f"report:  {tables.parent / 'report.html'} (not built: make report)",
    ]
    assert lines[5].split() == ["far", "en"]  # the order of languages.csv
    assert lines[6].split() == ["spt", "L4", "0.400", "0.700"]


def test_headline_stage_without_a_summary_says_what_to_run(tmp_path):
    with pytest.raises(SystemExit, match=r"summary\.csv not found; run the workflow first"):
        headline.main(["--tables", str(tmp_path)])


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (driven through Playwright), or a skip that says what is missing (asked
    for before smoke_run, so that a skip costs no run of the workflow)."""
    missing = []
    if shutil.which("chromium") is None:
        missing.append("chromium (make test installs Debian's package when run as root)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("Playwright for Python (the test extra: pip install -e '.[test]')")
    if missing:
        message = f"the report test needs {' and '.join(missing)}"
        if os.environ.get("XLPROMPT_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return shutil.which("chromium")


TIMEOUT_MS = 60_000  # per step: generous, the machine may be busy
CONTENT_IMAGE = "div.flex-row > nav + div img"  # the report's content pane, right of the navbar


def item_rows(page):
    """The rows of the results table the navbar shows (one per report item)."""
    return page.locator("nav table tbody tr")


def open_subcategory(page, category: str, subcategory: str | None) -> None:
    """From anywhere in the report: the menu (the breadcrumbs' first link), the category, and
    (where the category has several) the subcategory, as a reader clicks through them."""
    page.locator("nav ol li a").first.click()
    page.locator("nav ul li a").filter(has=page.get_by_text(category, exact=True)).click()
    if subcategory is not None:
        page.locator("nav ul li a").filter(has=page.get_by_text(subcategory, exact=True)).click()
    item_rows(page).first.wait_for()


def text_of(page, html: str) -> str:
    """The text an HTML fragment shows, whitespace collapsed (the browser parses it)."""
    return " ".join(
        page.evaluate(
            "html => { const d = document.createElement('div'); d.innerHTML = html; return d.textContent }", html
        ).split()
    )


@pytest.mark.slow
def test_report_opens_in_a_browser_with_front_page_every_figure_and_the_tables(chromium, smoke_run, tmp_path):
    """The report as a researcher opens it: Chromium runs its JavaScript app; every figure of the
    run is in it and is displayed by clicking menu -> category -> subcategory -> item, every table
    downloads as the file the run wrote, and each item shows its description."""
    from playwright.sync_api import sync_playwright

    report = tmp_path / "report.html"
    snakemake("--configfile", str(SMOKE), "--report", str(report), cwd=smoke_run)
    results = smoke_run / "results" / "smoke"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(report.as_uri())

            # The front page: the experiment, its config, and a paragraph per category.
            front = page.locator("div.prose").first
            front.wait_for()
            text = " ".join(front.inner_text().split())
            for expected in (
                "Cross-lingual soft prompts: experiment smoke",
                "Backbone: tiny-xlmr-smoke",
                "Tasks: topic, nli, paraphrase",
                "Methods: spt, full_ft, ltp, untrained, no_prompt",
                "Seeds: 0",
                "Prompt lengths: 4",
                "Trained in: en",
                "Test languages: en, rev, far",
                "SPoT: sources topic, mix, topic_rev; targets domain, rte",
                "How to read each section",
                "Transfer: soft prompt transfer between tasks",
                "the training curves of the prompts",
            ):
                assert expected in text, expected
            assert front.locator(".system-message").count() == 0, "reStructuredText errors on the front page"

            categories = page.evaluate("categories")  # {category: {subcategory: [path, ...]}}
            items = page.evaluate("results")  # {path: {mime_type, data_uri, caption, ...}}
            assert {"Methods", "Transfer", "Similarity", "Tables"} <= set(categories), categories
            assert set(categories["Methods"]) == {"all tasks", "topic", "nli", "paraphrase"}
            figures = {f"results/smoke/figures/{path.name}" for path in (results / "figures").glob("*.png")}
            assert len(figures) >= 7, figures
            assert figures <= set(items), f"not in the report: {figures - set(items)}"
            tables = {
                f"results/smoke/tables/{name}.csv" for name in ("summary", "per_language", "transfer", "correlation")
            }
            assert tables <= set(categories["Tables"]["Other"]), categories["Tables"]

            # The front page's link to a category opens it.
            front.get_by_role("link", name="Similarity", exact=True).click()
            page.locator("nav ol li a").filter(has=page.get_by_text("Similarity", exact=True)).wait_for()

            shown = set()
            for category, subcategories in categories.items():
                for subcategory, paths in subcategories.items():
                    chosen = subcategory if len(subcategories) > 1 else None  # one: the app opens it
                    open_subcategory(page, category, chosen)
                    assert item_rows(page).count() == len(paths), (category, subcategory)
                    for row in range(len(paths)):
                        open_subcategory(page, category, chosen)
                        eye = item_rows(page).nth(row).locator("a[iconname=eye]")
                        if eye.get_attribute("href") == "#":  # a figure: shown right of the navbar
                            before = page.evaluate("app.state.resultPath || null")
                            eye.click()
                            page.wait_for_function(
                                f"""before => {{
                                    const path = app.state.resultPath, img = document.querySelector({CONTENT_IMAGE!r});
                                    return path !== before && img !== null && img.src === results[path].data_uri
                                        && img.complete;  // loaded, or failed to
                                }}""",
                                arg=before,
                            )
                            path = page.evaluate("app.state.resultPath")
                            image = page.locator(CONTENT_IMAGE)
                            assert image.is_visible(), path
                            width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
                            assert min(width, height) > 100, f"{path} not displayed: {width} x {height} pixels"
                        else:  # a table: a download of the very file the run wrote
                            href = eye.get_attribute("href")
                            path = next(p for p in paths if items[p]["data_uri"] == href)
                            assert eye.get_attribute("download") == Path(path).name
                            assert base64.b64decode(href.split("base64,", 1)[1]) == (smoke_run / path).read_bytes()
                        # its description (the caption), behind the item's information button
                        item_rows(page).nth(row).locator("a[iconname=information-circle]").click()
                        info = page.locator("nav ul").first
                        info.get_by_text("Description", exact=True).wait_for()
                        assert info.locator(".system-message").count() == 0, path
                        caption = text_of(page, items[path]["caption"])
                        assert len(caption) > 100, path
                        assert caption in " ".join(info.text_content().split()), path
                        if Path(path).name in ("summary.csv", "per_language.csv"):
                            assert "95% interval (columns low, high" in caption, path
                        shown.add(path)
            assert shown == set(items)
            assert figures | tables <= shown
            assert not errors, errors
        finally:
            browser.close()
