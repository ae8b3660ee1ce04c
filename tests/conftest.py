"""Shared fixtures: a tiny generated world and a tiny pretrained backbone, built once per session."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("XLPROMPT_PROGRESS", "0")

from tiny_models import ALL, build_tiny

from xlprompt.data.contract import load_labels, write_labels
from xlprompt.data.generated import generate_world
from xlprompt.data.world import LanguageSpec, WorldConfig
from xlprompt.models.families import label_word_text
from xlprompt.models.pretrain import pretrain
from xlprompt.runtime.settings import BackboneShape, MLMSettings

REPO = Path(__file__).resolve().parents[1]

TINY_WORLD = WorldConfig(
    seed=3,
    languages=(
        LanguageSpec("en"),
        LanguageSpec("rev", word_order="reversed"),
        LanguageSpec("half", shared_vocab=0.5, word_order="sov"),
        LanguageSpec("far", shared_vocab=0.0, script="greek", morphology=1.0),
    ),
    n_topics=3,
    corpus_documents=1500,
    train_per_class=12,
    dev_per_class=6,
    test_per_class=6,
)
TINY_SHAPE = BackboneShape(
    layers=1, hidden=32, heads=2, ffn=64, vocab_size=500, max_length=48, max_prompt_length=16, dropout=0.1
)


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "tiny"
    out.mkdir()
    generate_world(TINY_WORLD, out)
    return out


@pytest.fixture(scope="session")
def backbone_dir(world_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny-xlmr"
    pretrain(world_dir, out, TINY_SHAPE, MLMSettings(steps=8, batch_size=16))
    return out


@pytest.fixture(scope="session")
def ticket_path(world_dir, backbone_dir, tmp_path_factory) -> Path:
    """A 20% winning ticket of the tiny backbone (finetune_mlm + select_ticket, as the workflow runs them)."""
    from xlprompt.stages import finetune_mlm, select_ticket

    root = tmp_path_factory.mktemp("ltp")
    finetune_mlm.main(
        [
            "--backbone",
            str(backbone_dir),
            "--text",
            str(world_dir / "corpus" / "en.txt"),
            "--out",
            str(root / "mlm"),
            "--steps",
            "4",
            "--batch-size",
            "8",
            "--lr",
            "1e-3",
        ]
    )
    select_ticket.main(
        [
            "--backbone",
            str(backbone_dir),
            "--finetuned",
            str(root / "mlm"),
            "--out",
            str(root / "ticket"),
            "--sparsity",
            "0.2",
        ]
    )
    return root / "ticket" / "mask.safetensors"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The smoke config run once from scratch with local scheduling; other runs compare against it."""
    from workflow_run import run_smoke_locally

    return run_smoke_locally(tmp_path_factory.mktemp("smoke"))


@pytest.fixture(scope="session")
def stand_ins(world_dir, tmp_path_factory) -> dict[str, Path]:
    """One saved stand-in per backbone kind, built once per test session."""
    root = tmp_path_factory.mktemp("stand-ins")
    return {kind: build_tiny(kind, world_dir, root / kind) for kind in ALL}


def single_token_words(tokenizer, world_dir: Path, family: str, n: int) -> list[str]:
    """``n`` words that ``tokenizer`` reads as one token, the corpus's most frequent first, then whole
    words of the vocabulary: label words a masked LM can use (as a user picks them for XLM-R)."""
    counts = Counter((world_dir / "corpus" / "en.txt").read_text(encoding="utf-8").split())
    candidates = [w for w, _ in counts.most_common()] + [tokenizer.decode([i]).strip() for i in range(len(tokenizer))]
    words = [
        w
        for w in dict.fromkeys(candidates)
        if w.isalpha() and len(tokenizer(label_word_text(w, family), add_special_tokens=False)["input_ids"]) == 1
    ]
    assert len(words) >= n, f"only {words} are single tokens"
    return words[:n]


def with_label_words(data_dir: Path, out: Path, words: list[str]) -> Path:
    """A copy of a data set whose label words (every family) are ``words``."""
    shutil.copytree(data_dir, out)
    labels = load_labels(out)
    write_labels(out, type(labels)(labels.task, labels.names, dict.fromkeys(labels.verbalizers, words)))
    return out


def train_killed_after_checkpoint(monkeypatch, step: int, *train_args) -> None:
    """``train_prompt(*train_args)`` killed right after it writes the checkpoint of ``step`` (what a
    preempted job leaves), with ``save_checkpoint`` restored afterwards for the resumed run."""
    import pytest

    from xlprompt.methods import training as train_module

    class Killed(Exception):
        pass

    original = train_module.save_checkpoint

    def save_then_die(folder, tensors, optimizer, plain):
        original(folder, tensors, optimizer, plain)
        if plain["step"] == step:
            raise Killed

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        train_module.train_prompt(*train_args)
    monkeypatch.setattr(train_module, "save_checkpoint", original)
