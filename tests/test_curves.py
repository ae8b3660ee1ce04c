"""Training curves: train_log.jsonl lines into the tidy table, and the figure per task."""

import json
from pathlib import Path

import pandas as pd
import pytest

from xlprompt.analysis.curves import COLUMNS, training_curves
from xlprompt.stages import plot_curves


def fake_run(folder: Path, method: str, seed: int, log_lines: list[dict] | None, name: str | None = None) -> Path:
    """A prompt folder as training leaves it, as far as the curves read it: meta.json and train_log.jsonl."""
    folder.mkdir(parents=True)
    meta = {"task": "topic", "config": {"method": method, "prompt_length": 4, "seed": seed}}
    if name:
        meta["method_name"] = name
    (folder / "meta.json").write_text(json.dumps(meta))
    if log_lines is not None:
        (folder / "train_log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in log_lines))
    return folder


@pytest.fixture
def runs(tmp_path) -> list[Path]:
    spt = fake_run(
        tmp_path / "spt" / "seed0",
        "spt",
        0,
        [
            {"step": 10, "train_loss": 1.5, "dev_loss": 1.25, "dev_accuracy": 0.5},
            {"step": 20, "train_loss": 0.75, "dev_loss": 1.0, "dev_accuracy": 0.625},
        ],
    )
    variant = fake_run(
        tmp_path / "spt_reparam" / "seed1",
        "spt",
        1,
        [
            {"step": 10, "train_loss": 2.0, "dev_loss": 1.5, "dev_accuracy": 0.375},
        ],
        name="spt_reparam",
    )
    # Controls: untrained logs only its step-0 validation loss; no_prompt here without any log; and an empty log.
    untrained = fake_run(tmp_path / "untrained" / "seed0", "untrained", 0, [{"step": 0, "dev_loss": 1.1}])
    no_prompt = fake_run(tmp_path / "no_prompt" / "seed0", "no_prompt", 0, None)
    empty = fake_run(tmp_path / "empty" / "seed0", "untrained", 1, [])
    return [spt, variant, untrained, no_prompt, empty]


def test_training_curves_reads_every_validation_line_into_the_tidy_table(runs):
    curves = training_curves(runs, "tiny")
    assert list(curves.columns) == COLUMNS
    expected = [
        ("spt", 0, 10, "dev_accuracy", 0.5),
        ("spt", 0, 20, "dev_accuracy", 0.625),
        ("spt", 0, 10, "dev_loss", 1.25),
        ("spt", 0, 20, "dev_loss", 1.0),
        ("spt", 0, 10, "train_loss", 1.5),
        ("spt", 0, 20, "train_loss", 0.75),
        ("spt_reparam", 1, 10, "dev_accuracy", 0.375),
        ("spt_reparam", 1, 10, "dev_loss", 1.5),
        ("spt_reparam", 1, 10, "train_loss", 2.0),
    ]
    assert curves.to_dict("records") == [
        {
            "model": "tiny",
            "task": "topic",
            "method": method,
            "prompt_length": 4,
            "seed": seed,
            "step": step,
            "metric": metric,
            "value": value,
        }
        for method, seed, step, metric, value in expected
    ]


def test_a_train_log_line_that_is_not_json_names_the_file_and_line(tmp_path):
    run = fake_run(tmp_path / "run", "spt", 0, [{"step": 10, "train_loss": 1.0, "dev_loss": 1.0, "dev_accuracy": 0.5}])
    with open(run / "train_log.jsonl", "a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    with pytest.raises(ValueError, match=r"train_log.jsonl: line 2 is not JSON"):
        training_curves([run], "tiny")


def test_plot_curves_cli_writes_the_table_and_a_figure_per_task(runs, tmp_path):
    table, figures = tmp_path / "tables" / "training_curves.csv", tmp_path / "figures"
    plot_curves.main(["--prompt", *map(str, runs), "--model", "tiny", "--table", str(table), "--out", str(figures)])
    written = pd.read_csv(table)
    pd.testing.assert_frame_equal(written, training_curves(runs, "tiny"))
    assert (figures / "training_topic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in figures.iterdir()] == ["training_topic.png"]  # nothing temporary left behind


def test_a_task_whose_runs_none_trained_still_gets_its_figure(runs, tmp_path):
    table, figures = tmp_path / "training_curves.csv", tmp_path / "figures"
    plot_curves.main(["--prompt", *map(str, runs[2:]), "--model", "tiny", "--table", str(table), "--out", str(figures)])
    assert list(pd.read_csv(table).columns) == COLUMNS
    assert pd.read_csv(table).empty
    assert (figures / "training_topic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
