"""Figures whose text can be read: no two text boxes overlap and none is cut at the edge, checked with
matplotlib's own renderer (xlprompt.analysis.figure_text) on every figure of the smoke run."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

import xlprompt.analysis.figures as figures
from xlprompt.analysis.figure_text import text_boxes, text_problems


def test_overlapping_titles_and_a_text_off_the_figure_are_found():
    fig, (left, right) = plt.subplots(1, 2, figsize=(4, 2))
    left.set_title("a title far too long for its panel, running into the next one")
    right.set_title("the neighbour's title")
    fig.text(1.5, 0.5, "off the edge", in_layout=False)  # outside what bbox_inches="tight" saves
    problems = text_problems(fig)
    plt.close(fig)
    assert any("far too long" in p and "neighbour" in p and "overlaps" in p for p in problems), problems
    assert any("'off the edge' is cut" in p for p in problems), problems


def test_a_legend_counts_as_one_box_and_ticks_outside_the_view_are_not_text():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="first")
    ax.plot([0, 1], [1, 0], label="second")
    ax.legend(loc="center")
    ax.set_xticks([0.0, 0.5, 1.0], labels=["left", "middle", "right"])
    ax.set_xlim(0.2, 0.8)  # ticks at 0 and 1 now lie outside the view: matplotlib does not draw their labels
    boxes = [box.text for box in text_boxes(fig)]
    assert "first | second" in boxes
    assert "first" not in boxes
    assert "middle" in boxes
    assert "left" not in boxes
    assert "right" not in boxes
    assert text_problems(fig) == []
    plt.close(fig)


def test_text_crossing_a_legend_is_found():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="a line")
    ax.legend(loc="center")
    ax.text(0.5, 0.5, "right under the legend", ha="center", va="center", transform=ax.transAxes)
    assert any("right under the legend" in p and "a line" in p for p in text_problems(fig))
    plt.close(fig)


def every_smoke_figure(tables: Path, out: Path, train_language: str = "en") -> None:
    """Every figure of an experiment, drawn from its tables as the plotting stages draw them."""
    figures.experiment_figures(tables, out)
    figures.similarity_figures(tables, train_language, out)
    figures.plot_transfer(pd.read_csv(tables / "transfer.csv"), train_language, out / "transfer_gain.png")
    curves = pd.read_csv(tables / "training_curves.csv")
    for task in sorted(curves["task"].unique()):
        figures.training_figure(curves, task, out / f"training_{task}.png")


@pytest.mark.slow
def test_no_figure_of_the_smoke_run_has_colliding_or_cut_text(smoke_run, tmp_path, monkeypatch):
    drawn: dict[str, list[str]] = {}
    save = figures.save

    def checked_save(fig, path):
        drawn[Path(path).name] = text_problems(fig)
        save(fig, path)

    monkeypatch.setattr(figures, "save", checked_save)
    results = smoke_run / "results" / "smoke"
    every_smoke_figure(results / "tables", tmp_path)
    assert set(drawn) == {path.name for path in (results / "figures").glob("*.png")}  # every figure, no other
    assert {name: problems for name, problems in drawn.items() if problems} == {}


KEYS = ["metric", "embedding", "layers"]


def with_copies(table: pd.DataFrame, measures: pd.DataFrame, count: int) -> pd.DataFrame:
    """``table`` and the rows of ``count`` more measures: copies of ``measures``' rows under new layers."""
    copies = [table.merge(measures.iloc[[i % len(measures)]], on=KEYS).assign(layers=f"copy {i}") for i in range(count)]
    return pd.concat([table, *copies], ignore_index=True)


@pytest.mark.slow
@pytest.mark.parametrize("constant", [False, True])
def test_the_similarity_grid_of_fourteen_measures_keeps_its_statistics_readable(
    smoke_run, tmp_path, monkeypatch, constant
):
    """Fourteen measures in four columns, as the demo draws them, with correlations printed in full
    (or undefined, where a similarity or gain is constant)."""
    tables = smoke_run / "results" / "smoke" / "tables"
    similarity = pd.read_csv(tables / "similarity.csv")
    measures = similarity[KEYS].drop_duplicates()
    similarity = with_copies(similarity, measures, 14 - len(measures))
    correlation = with_copies(pd.read_csv(tables / "correlation.csv"), measures, 14 - len(measures))
    if not constant:
        correlation = correlation.assign(
            spearman=-0.83, spearman_low=-1.0, spearman_high=0.95, spearman_p_sources=0.333
        )
    problems: list[str] = []
    monkeypatch.setattr(figures, "save", lambda fig, path: (problems.extend(text_problems(fig)), plt.close(fig)))
    figures.similarity_vs_transfer(
        similarity, pd.read_csv(tables / "transfer.csv"), correlation, "en", tmp_path / "grid.png"
    )
    assert len(similarity[KEYS].drop_duplicates()) == 14
    assert problems == []
