"""Every stage's command line, run in process on tiny data, in the order the workflow runs them."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from xlprompt.__main__ import STAGES
from xlprompt.__main__ import main as xlprompt_main
from xlprompt.stages import aggregate, evaluate, generate_world, plot, pretrain_backbone, train_prompt


def test_generate_world_cli_writes_the_contract(tmp_path):
    spec = {
        "seed": 1,
        "n_topics": 2,
        "tasks": ["topic", "nli"],
        "corpus_documents": 200,
        "train_per_class": 3,
        "dev_per_class": 2,
        "test_per_class": 2,
        "languages": [{"code": "en"}, {"code": "rev", "word_order": "reversed"}],
    }
    generate_world.main(["--spec", json.dumps(spec), "--out", str(tmp_path / "w")])
    assert json.loads((tmp_path / "w" / "languages.json").read_text())[1] == {
        "lang": "rev",
        "shared_vocab": 1.0,
        "word_order": "reversed",
        "script": "latin",
        "morphology": 0.0,
        "distance": 0.2,
    }
    assert (tmp_path / "w" / "nli" / "rev" / "test.parquet").exists()
    assert not list(tmp_path.glob(".w.partial-*")), "no temporary folder is left behind"


def test_generate_world_names_an_unknown_key(tmp_path):
    with pytest.raises(ValueError, match=r"world: unknown key\(s\) \['topics'\]"):
        generate_world.main(
            ["--spec", json.dumps({"topics": 3, "languages": [{"code": "en"}]}), "--out", str(tmp_path / "w")]
        )
    assert not (tmp_path / "w").exists()


def test_pretrain_cli_resumes_from_its_checkpoint(world_dir, tmp_path, monkeypatch):
    args = [
        "--world",
        str(world_dir),
        "--layers",
        "1",
        "--hidden",
        "16",
        "--heads",
        "2",
        "--ffn",
        "32",
        "--vocab-size",
        "300",
        "--max-length",
        "32",
        "--max-prompt-length",
        "8",
        "--batch-size",
        "4",
        "--steps",
        "6",
        "--checkpoint-every",
        "3",
    ]
    pretrain_backbone.main([*args, "--out", str(tmp_path / "straight")])

    class Killed(Exception):
        pass

    def save_then_die(*a, **k):
        original(*a, **k)
        raise Killed

    from xlprompt.models import mlm

    original = mlm.save_checkpoint
    monkeypatch.setattr(mlm, "save_checkpoint", save_then_die)
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt"), "--out", str(tmp_path / "resumed")]
    with pytest.raises(Killed):
        pretrain_backbone.main(args + ckpt)
    assert not (tmp_path / "resumed").exists()
    assert (tmp_path / "ckpt" / "latest.json").exists()
    monkeypatch.setattr(mlm, "save_checkpoint", original)
    pretrain_backbone.main(args + ckpt)

    assert not (tmp_path / "ckpt").exists()
    straight, resumed = (tmp_path / d / "model.safetensors" for d in ("straight", "resumed"))
    assert straight.read_bytes() == resumed.read_bytes()
    log = [json.loads(line) for line in (tmp_path / "resumed" / "pretrain_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 5
    meta = json.loads((tmp_path / "resumed" / "meta.json").read_text())
    assert meta["config"]["steps"] == 6
    assert meta["versions"]["torch"]


def test_a_checkpoint_from_another_config_is_not_resumed(world_dir, tmp_path, monkeypatch):
    args = [
        "--world",
        str(world_dir),
        "--layers",
        "1",
        "--hidden",
        "16",
        "--heads",
        "2",
        "--ffn",
        "32",
        "--vocab-size",
        "300",
        "--max-length",
        "32",
        "--batch-size",
        "4",
        "--steps",
        "4",
        "--checkpoint-every",
        "2",
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
    ]
    from xlprompt.models import pretrain

    monkeypatch.setattr(pretrain, "shutil", type("NoRm", (), {"rmtree": staticmethod(lambda p: None)}))
    pretrain_backbone.main([*args, "--out", str(tmp_path / "a")])  # leaves its checkpoint (rmtree disabled)
    monkeypatch.undo()
    # Wider model, same checkpoint folder: resuming would fail on shapes; it must start over.
    pretrain_backbone.main([a if a != "16" else "32" for a in args] + ["--out", str(tmp_path / "b")])
    assert json.loads((tmp_path / "b" / "config.json").read_text())["hidden_size"] == 32


def test_train_evaluate_aggregate_plot_chain(world_dir, backbone_dir, tmp_path):
    metrics = []
    for method, length in (("spt", 4), ("untrained", 4), ("no_prompt", 0)):
        prompt = tmp_path / "prompts" / method
        train_prompt.main(
            [
                "--backbone",
                str(backbone_dir),
                "--data",
                str(world_dir / "topic"),
                "--out",
                str(prompt),
                "--method",
                method,
                "--prompt-length",
                str(length),
                "--steps",
                "6",
                "--batch-size",
                "8",
                "--eval-every",
                "3",
                "--max-length",
                "48",
            ]
        )
        assert {"prompt.safetensors", "meta.json", "train_log.jsonl"} <= {p.name for p in prompt.iterdir()}
        out = tmp_path / "metrics" / f"{method}.json"
        evaluate.main(
            [
                "--prompt",
                str(prompt),
                "--backbone",
                str(backbone_dir),
                "--data",
                str(world_dir / "topic"),
                "--out",
                str(out),
                "--predictions",
                str(out.with_suffix(".parquet")),
            ]
        )
        result = json.loads(out.read_text())
        assert [row["lang"] for row in result["rows"]] == ["en", "far", "half", "rev"]
        assert all(0 <= row["accuracy"] <= 1 for row in result["rows"])
        metrics.append(str(out))
    assert (tmp_path / "prompts" / "spt" / "peft" / "adapter_config.json").exists()
    # All prompts in one call (one backbone, one tokenisation; spt and untrained, both of
    # length 4, in shared forward passes) give the same metrics files, losses to float precision.
    together = [str(tmp_path / "together" / f"{method}.json") for method in ("spt", "untrained", "no_prompt")]
    evaluate.main(
        [
            "--prompt",
            *(str(tmp_path / "prompts" / m) for m in ("spt", "untrained", "no_prompt")),
            "--backbone",
            str(backbone_dir),
            "--data",
            str(world_dir / "topic"),
            "--out",
            *together,
        ]
    )
    for batched, alone in zip(together, metrics):
        batched, alone = json.loads(Path(batched).read_text()), json.loads(Path(alone).read_text())
        assert [row.pop("loss") for row in batched["rows"]] == pytest.approx(
            [row.pop("loss") for row in alone["rows"]], rel=1e-5
        )
        assert batched == alone
    with pytest.raises(SystemExit, match="give one output per prompt"):
        evaluate.main(
            [
                "--prompt",
                str(tmp_path / "prompts" / "spt"),
                "--backbone",
                str(backbone_dir),
                "--data",
                str(world_dir / "topic"),
                "--out",
                *together,
            ]
        )

    tables = tmp_path / "tables"
    aggregate.main(
        [
            "--metrics",
            *metrics,
            "--predictions",
            *(str(Path(m).with_suffix(".parquet")) for m in metrics),
            "--methods",
            "spt",
            "untrained",
            "no_prompt",
            "--prompts",
            *(str(tmp_path / "prompts" / m) for m in ("spt", "untrained", "no_prompt")),
            "--languages",
            str(world_dir / "languages.json"),
            "--out",
            str(tables),
        ]
    )
    per_language = pd.read_csv(tables / "per_language.csv")
    assert list(per_language.columns) == [
        "model",
        "task",
        "method",
        "prompt_length",
        "source",
        "seed",
        "lang",
        "metric",
        "value",
        "low",
        "high",
    ]
    assert len(per_language) == 3 * 4 * 2  # methods x languages x metrics
    assert set(pd.read_csv(tables / "languages.csv")["lang"]) == {"en", "rev", "half", "far"}
    assert pd.read_csv(tables / "tasks.csv").to_dict("records") == [
        {"task": "topic", "labels": 3, "chance_accuracy": pytest.approx(1 / 3)}
    ]

    plot.main(["--tables", str(tables), "--out", str(tmp_path / "figures")])
    # methods.csv: what each method trains (the prompt: length x hidden numbers) and stores, its accuracy
    methods = pd.read_csv(tables / "methods.csv").set_index("method")
    hidden = json.loads((backbone_dir / "config.json").read_text())["hidden_size"]
    assert methods.loc["spt", "trainable_parameters"] == 4 * hidden
    assert methods.loc["untrained", "trainable_parameters"] == 0
    assert methods.loc["spt", "train_seconds"] > 0
    assert methods.loc["spt", "artifact_bytes"] > 4 * hidden * 4
    summary = pd.read_csv(tables / "summary.csv")
    english = summary[(summary.metric == "accuracy") & (summary.lang == "en")].set_index("method")["mean"]
    assert methods["accuracy_train"].to_dict() == pytest.approx(english.to_dict())
    comparisons = pd.read_csv(tables / "comparisons.csv")
    assert list(zip(comparisons.method_a, comparisons.method_b)).count(("spt", "untrained")) == 4 + 1  # languages, all
    for name in ("heatmap_topic.png", "accuracy_vs_distance.png", "comparisons_topic.png", "methods.png"):
        assert (tmp_path / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_stage_has_help_with_an_example(capsys):
    for stage in STAGES:
        with pytest.raises(SystemExit) as exit_info:
            xlprompt_main([stage, "--help"])
        assert exit_info.value.code == 0
        assert re.search(r"Examples?:", capsys.readouterr().out), stage


def test_unknown_stage_is_a_clear_error():
    with pytest.raises(SystemExit, match="unknown stage 'trian'"):
        xlprompt_main(["trian"])
