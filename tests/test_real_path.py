"""The real path (data: and backbone.hub:) end to end, offline: the papers' configs
(config/xnli-xlmr.yaml, config/sib200-xglm.yaml, config/belebele-llama.yaml) shrunk to test size, run
on a Hugging Face cache holding XNLI, AmericasNLI, SIB-200 and Belebele files in their Hub schema, a
tiny masked LM where FacebookAI/xlm-roberta-base's pinned snapshot would be, a tiny XGLM where
facebook/xglm-564M's would be and a tiny Llama where meta-llama/Llama-3.1-8B's would be (each with a
tokenizer trained here)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hub_fixtures import (
    belebele_file,
    model_snapshot,
    nli_sentence_file,
    sentences,
    sib_sentence_file,
    snapshot_folder,
)
from tiny_models import build_tiny
from workflow_run import REPO, snakemake

from xlprompt.data.contract import load_split
from xlprompt.data.hub import HUB_BACKBONES, SIB_WORDS
from xlprompt.models.pretrain import pretrain
from xlprompt.runtime.io import write_json
from xlprompt.runtime.settings import BackboneShape, MLMSettings

PAPER_CONFIG = REPO / "config" / "xnli-xlmr.yaml"
XLMR = "FacebookAI/xlm-roberta-base"
XGLM = "facebook/xglm-564M"
SPT_CONFIG = REPO / "config" / "sib200-xglm.yaml"
LLAMA = "meta-llama/Llama-3.1-8B"
BELEBELE_CONFIG = REPO / "config" / "belebele-llama.yaml"


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("real-path")
    cache = root / "hf-cache"
    for lang_index, lang in enumerate(("en", "de")):
        for split_index, (split, rows) in enumerate((("train", 60), ("validation", 12), ("test", 12))):
            nli_sentence_file(
                snapshot_folder(cache, "xnli") / lang / f"{split}-00000-of-00001.parquet",
                rows,
                seed=10 * lang_index + split_index,
            )
    for split_index, split in enumerate(("validation", "test")):
        nli_sentence_file(
            snapshot_folder(cache, "americasnli") / "aym" / f"{split}-00000-of-00001.parquet",
            12,
            seed=100 + split_index,
        )
    for lang_index, lang in enumerate(("eng_Latn", "deu_Latn", "hau_Latn")):
        for split_index, (split, rows) in enumerate((("train", 70), ("dev", 14), ("test", 14))):
            sib_sentence_file(
                snapshot_folder(cache, "sib200") / "data" / lang / f"{split}.tsv",
                rows,
                seed=200 + 10 * lang_index + split_index,
            )
    # A tiny masked LM whose tokenizer knows the fixture words and the label words of both data sets.
    world = root / "corpus-source"
    (world / "corpus").mkdir(parents=True)
    lines = sentences(random.Random(5), 800) + ["yes maybe no"] * 40 + [" ".join(SIB_WORDS)] * 40
    (world / "corpus" / "en.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_json(world / "corpus" / "focus_words.json", {"en": ["yes", "maybe", "no"]})
    write_json(world / "manifest.json", {})
    shape = BackboneShape(layers=1, hidden=32, heads=2, ffn=64, vocab_size=200, max_length=48, max_prompt_length=8)
    pretrain(world, root / "tiny", shape, MLMSettings(steps=4, batch_size=16))
    model_snapshot(cache, XLMR, HUB_BACKBONES[XLMR], root / "tiny")
    # XGLM is pinned to a branch (refs/pr/4): the cache resolves it to a commit.
    xglm = build_tiny("xglm", world, root / "tiny-xglm")  # its own tokenizer, trained on the same text
    model_snapshot(cache, XGLM, "9d08531" + "0" * 33, xglm, ref=HUB_BACKBONES[XGLM])
    for lang in ("eng_Latn", "deu_Latn"):  # 90 passages: 60 train, 20 validate, 10 (20 questions) test
        belebele_file(snapshot_folder(cache, "belebele") / "data" / f"{lang}.jsonl", passages=90)
    model_snapshot(cache, LLAMA, HUB_BACKBONES[LLAMA], build_tiny("llama", world, root / "tiny-llama"))
    return cache


def shrunk_paper_config(folder: Path) -> Path:
    """config/xnli-xlmr.yaml with its structure kept and its sizes cut to seconds."""
    config = yaml.safe_load(PAPER_CONFIG.read_text())
    config["data"]["tasks"]["nli"] = [
        {"hub": "xnli", "languages": ["en", "de"]},
        {"hub": "americasnli", "languages": ["aym"]},
    ]
    config.update(
        threads=1,
        seeds=[0],
        methods=["spt", "ltp", "deep_prompt", "lora", "bitfit", "no_prompt"],
        prompt={"lengths": [4], "init": "vocab"},
    )
    config["training"].update(steps=6, batch_size=4, train_per_class=4, eval_every=3, checkpoint_every=3, max_length=32)
    config["ltp"]["finetune"].update(steps=3, batch_size=8)
    path = folder / "xnli-xlmr-tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_the_paper_config_runs_offline_from_a_filled_hub_cache(hub_cache, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    snakemake(
        "--cores",
        "2",
        "--configfile",
        str(shrunk_paper_config(tmp_path)),
        cwd=work,
        extra_env={
            "HF_HUB_CACHE": str(hub_cache),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache"),
        },
    )
    data = work / "resources" / "data" / "xnli-americasnli"
    languages = {entry["lang"]: entry for entry in json.loads((data / "languages.json").read_text())}
    assert {code: entry["evaluation_only"] for code, entry in languages.items()} == {
        "aym": True,
        "de": False,
        "en": False,
    }
    assert sorted(p.name for p in (data / "corpus").iterdir()) == ["de.txt", "en.txt"]
    manifest = json.loads((work / "resources" / "downloads" / "xnli-americasnli" / "nli" / "manifest.json").read_text())
    assert [(s["hub"], s["revision"]) for s in manifest["source"]["sources"]] == [
        ("facebook/xnli", "b8dd5d7af51114dbda02c0e3f6133f332186418e"),
        ("nala-cub/americas_nli", "aa389759092cb553655aa4002a1a28f4ac78657b"),
    ]
    model_meta = json.loads((work / "resources" / "models" / "xlm-roberta-base" / "meta.json").read_text())
    assert model_meta["source"]["commit"] == HUB_BACKBONES[XLMR]

    table = pd.read_csv(work / "results" / "xnli-xlmr" / "tables" / "per_language.csv")
    accuracy = table[table.metric == "accuracy"]
    assert set(accuracy["method"]) == {"spt", "ltp", "deep_prompt", "lora", "bitfit", "no_prompt"}
    for method, rows in accuracy.groupby("method"):
        assert set(rows["lang"]) == {"en", "de", "aym"}, method  # AmericasNLI evaluated, never trained on
    assert accuracy["value"].between(0, 1).all()


@pytest.mark.slow
def test_with_downloads_off_and_an_empty_cache_the_download_rules_say_what_to_fetch(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = snakemake(
        "--cores",
        "1",
        "--keep-going",
        "--configfile",
        str(shrunk_paper_config(tmp_path)),
        cwd=work,
        check=False,
        extra_env={"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode != 0
    dataset_log = (work / "logs" / "download_dataset" / "xnli-americasnli" / "nli.log").read_text()
    assert "facebook/xnli@b8dd5d7af511 is not in the Hugging Face cache" in dataset_log
    assert (
        "hf download facebook/xnli --repo-type dataset --revision b8dd5d7af51114dbda02c0e3f6133f332186418e"
        in dataset_log
    )
    assert "HF_HUB_OFFLINE=0" in dataset_log
    model_log = (work / "logs" / "download_backbone" / "xlm-roberta-base.log").read_text()
    assert f"hf download {XLMR} --revision {HUB_BACKBONES[XLMR]}" in model_log
    assert not (work / "resources" / "data").exists()
    assert not (work / "resources" / "models").exists()


def run_offline(config: Path, hub_cache: Path, tmp_path: Path) -> Path:
    """The whole graph of ``config`` in ``tmp_path/work``, offline, from the filled Hub cache; the work folder."""
    work = tmp_path / "work"
    work.mkdir()
    snakemake(
        "--cores",
        "2",
        "--configfile",
        str(config),
        cwd=work,
        extra_env={
            "HF_HUB_CACHE": str(hub_cache),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache"),
        },
    )
    return work


@pytest.mark.slow
def test_the_spt_paper_config_trains_xglm_prompts_offline(hub_cache, tmp_path):
    """config/sib200-xglm.yaml shrunk: every SIB-200 language in the cache, frozen and reparameterised
    prompts on a (tiny) XGLM read as the next word after the prompt."""
    config = yaml.safe_load(SPT_CONFIG.read_text())
    config.update(threads=1, seeds=[0], methods=["spt", "spt_reparam"], prompt={"lengths": [4], "init": "uniform"})
    config["variants"] = {"spt_reparam": {"method": "spt", "reparameterization": True, "reparam_hidden": 8}}
    config["method_overrides"] = {}
    config["training"].update(steps=6, batch_size=4, train_per_class=3, eval_every=3, checkpoint_every=3, max_length=32)
    path = tmp_path / "sib200-xglm-tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    work = run_offline(path, hub_cache, tmp_path)
    model_meta = json.loads((work / "resources" / "models" / "xglm-564M" / "meta.json").read_text())
    assert model_meta["source"]["revision"] == "refs/pr/4"
    assert model_meta["source"]["commit"].startswith("9d08531")
    assert model_meta["model_type"] == "xglm"
    prompts = work / "results" / "sib200-xglm" / "prompts" / "xglm-564M" / "topic"
    reparam = json.loads((prompts / "spt_reparam" / "L4" / "seed0" / "meta.json").read_text())
    assert reparam["family"] == "causal_lm"
    assert reparam["method_name"] == "spt_reparam"
    assert reparam["config"]["reparameterization"]
    assert reparam["verbalizer"] == list(SIB_WORDS)
    table = pd.read_csv(work / "results" / "sib200-xglm" / "tables" / "per_language.csv")
    accuracy = table[table.metric == "accuracy"]
    assert set(accuracy["method"]) == {"spt", "spt_reparam"}
    assert set(accuracy["lang"]) == {"eng_Latn", "deu_Latn", "hau_Latn"}  # languages: all = what the cache holds


@pytest.mark.slow
def test_the_belebele_llama_config_trains_prompts_prefixes_and_lora_in_bfloat16_offline(hub_cache, tmp_path):
    """config/belebele-llama.yaml shrunk: Belebele's held-out English passages train spt, deep_prompt and
    lora on a (tiny) Llama in bfloat16 with gradient checkpointing; every language in the cache is tested."""
    config = yaml.safe_load(BELEBELE_CONFIG.read_text())
    config.update(threads=1, seeds=[0])
    config["prompt"]["lengths"] = [4]
    config["training"].update(steps=4, batch_size=4, train_per_class=3, eval_every=2, checkpoint_every=2, max_length=96)
    path = tmp_path / "belebele-llama-tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    work = run_offline(path, hub_cache, tmp_path)
    model_meta = json.loads((work / "resources" / "models" / "llama-3.1-8b" / "meta.json").read_text())
    assert model_meta["source"]["revision"] == HUB_BACKBONES[LLAMA]
    assert model_meta["model_type"] == "llama"
    prompts = work / "results" / "belebele-llama" / "prompts" / "llama-3.1-8b" / "reading"
    for method, length in (("spt", 4), ("deep_prompt", 4), ("lora_only", 0)):
        meta = json.loads((prompts / method / f"L{length}" / "seed0" / "meta.json").read_text())
        assert meta["backbone_dtype"] == "bfloat16"
        assert meta["config"]["gradient_checkpointing"]
        assert meta["verbalizer"] == ["A", "B", "C", "D"]
        assert meta["train_examples"] == 12
        if method == "lora_only":  # the adapter is PEFT's own; there is no prompt to export
            assert (prompts / method / "L0" / "seed0" / "lora" / "adapter_config.json").exists()
        else:  # PEFT's prompt tuning and prefix tuning
            assert meta["peft_export"]["exported"], meta["peft_export"]
    table = pd.read_csv(work / "results" / "belebele-llama" / "tables" / "per_language.csv")
    accuracy = table[table.metric == "accuracy"]
    assert set(accuracy["method"]) == {"spt", "deep_prompt", "lora_only", "no_prompt"}
    assert set(accuracy["lang"]) == {"eng_Latn", "deu_Latn"}
    data = work / "resources" / "data" / "belebele" / "reading"
    for lang in ("eng_Latn", "deu_Latn"):  # the 10 passages left for the test, two questions each
        assert len(load_split(data, lang, "test", 4)) == 20
