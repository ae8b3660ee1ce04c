"""Hub data sets and local files -> the data contract, on files the tests write in each data set's
exact Hub schema (column names and types, ClassLabel integers or label strings, file and split
names), placed in a Hugging Face cache folder as snapshot_download leaves it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hub_fixtures import (
    NLI_FEATURES,
    belebele_file,
    model_snapshot,
    nli_file,
    pawsx_file,
    sib_file,
    snapshot_folder,
    write_hub_parquet,
)

from xlprompt.data.contract import languages_of, load_labels, load_split
from xlprompt.data.hub import HUB_DATASETS, SIB_NAMES
from xlprompt.stages import download_dataset


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An offline Hugging Face cache holding every data set's fixture files (en/de or eng_Latn/deu_Latn),
    and an empty datasets cache of its own (datasets keeps there the Arrow copies of what it reads)."""
    import datasets.config
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    for lang in ("en", "de"):
        for split, rows in (("train", 9), ("validation", 6), ("test", 6)):
            nli_file(snapshot_folder(cache, "xnli") / lang / f"{split}-00000-of-00001.parquet", rows)
            pawsx_file(
                snapshot_folder(cache, "pawsx") / lang / f"{split}-00000-of-00001.parquet",
                rows,
                [-1] + [i % 2 for i in range(rows - 1)],
            )  # the card's "-1: no label"
    for lang in ("aym", "quy"):
        for split in ("validation", "test"):
            nli_file(snapshot_folder(cache, "americasnli") / lang / f"{split}-00000-of-00001.parquet", 6)
    for lang in ("eng_Latn", "deu_Latn"):
        for split, rows in (("train", 14), ("dev", 7), ("test", 7)):
            sib_file(
                snapshot_folder(cache, "sib200") / "data" / lang / f"{split}.tsv",
                [SIB_NAMES[i % 7] for i in range(rows)],
            )
        (snapshot_folder(cache, "sib200") / "data" / lang / "labels.txt").write_text("\n".join(SIB_NAMES) + "\n")
        belebele_file(snapshot_folder(cache, "belebele") / "data" / f"{lang}.jsonl", passages=90)
    return cache


def download(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "out" / "data"
    download_dataset.main([*args, "--out", str(out)])
    return out


def test_xnli_becomes_the_contract_with_premise_hypothesis_and_classlabel_ids(hub_cache, tmp_path):
    out = download(tmp_path, "--hub", "xnli", "--languages", "en", "de")
    labels = load_labels(out)
    assert labels.task == "nli"
    assert labels.names == ["entailment", "neutral", "contradiction"]
    assert labels.verbalizers == {family: ["yes", "maybe", "no"] for family in ("masked_lm", "causal_lm", "seq2seq")}
    assert languages_of(out) == ["de", "en"]
    train = load_split(out, "en", "train", 3)
    assert list(train["text"][:2]) == ["premise 0, with a comma", "premise 1, with a comma"]
    assert list(train["text_pair"][:2]) == ["hypothesis 0", "hypothesis 1"]
    assert list(train["label"]) == [i % 3 for i in range(9)]
    assert len(load_split(out, "de", "validation", 3)) == 6
    assert len(load_split(out, "de", "test", 3)) == 6
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["hub"] == "facebook/xnli"
    assert manifest["source"]["revision"] == HUB_DATASETS["xnli"].revision
    assert set(manifest["source"]["files_sha256"]) == {
        f"{lang}/{split}-00000-of-00001.parquet" for lang in ("en", "de") for split in ("train", "validation", "test")
    }
    assert "en/train.parquet" in manifest["files_sha256"]
    assert "labels.json" in manifest["files_sha256"]
    # Read through datasets' parquet builder: its cache holds the Arrow copies.
    assert list((tmp_path / "datasets-cache" / "parquet").glob("*/*/*/*.arrow"))


def test_americasnli_languages_are_evaluation_only(hub_cache, tmp_path):
    out = download(tmp_path, "--hub", "americasnli", "--languages", "aym", "quy")
    assert HUB_DATASETS["americasnli"].evaluation_only
    assert not HUB_DATASETS["xnli"].evaluation_only
    assert sorted(p.name for p in (out / "aym").iterdir()) == ["test.parquet", "validation.parquet"]
    assert load_labels(out).names == load_labels(download(tmp_path / "x", "--hub", "xnli", "--languages", "en")).names


def test_pawsx_keeps_its_ids_and_drops_rows_without_a_label(hub_cache, tmp_path):
    out = download(tmp_path, "--hub", "pawsx", "--languages", "en")
    train = load_split(out, "en", "train", 2)
    assert len(train) == 8  # 9 rows, the first labelled -1
    assert list(train["id"][:2]) == ["2", "3"]
    assert list(train["label"][:3]) == [0, 1, 0]
    assert list(train["text_pair"][:1]) == ["s2 1"]
    assert load_labels(out).names == ["different", "paraphrase"]


def test_sib200_maps_category_strings_and_reads_dev_as_validation(hub_cache, tmp_path):
    out = download(tmp_path, "--hub", "sib200", "--languages", "eng_Latn", "deu_Latn")
    labels = load_labels(out)
    assert labels.task == "topic"
    assert labels.names == list(SIB_NAMES)
    assert labels.verbalizers["causal_lm"] == [
        "science",
        "travel",
        "politics",
        "sports",
        "health",
        "entertainment",
        "earth",
    ]
    validation = load_split(out, "eng_Latn", "validation", 7)
    assert len(validation) == 7
    assert list(validation["label"]) == list(range(7))
    train = load_split(out, "deu_Latn", "train", 7)
    assert train["text"][0] == 'A "quoted" sentence about science/technology, number 0.'  # quotes kept verbatim
    assert train["text_pair"].isna().all()
    assert list(train["id"][:2]) == ["1", "2"]
    assert list((tmp_path / "datasets-cache" / "csv").glob("*/*/*/*.arrow"))  # read by datasets' csv builder


def test_belebele_lays_out_passage_question_and_lettered_answers_and_holds_out_whole_passages(hub_cache, tmp_path):
    """lm-evaluation-harness's layout (P: / Q: / A-D / Answer:), labels the letters; train and validation carved
    from the test file by passage, the same passages in every language, none shared with the test."""
    out = download(tmp_path, "--hub", "belebele", "--languages", "all")
    assert languages_of(out) == ["deu_Latn", "eng_Latn"]
    labels = load_labels(out)
    assert labels.task == "reading"
    assert labels.names == ["A", "B", "C", "D"]
    assert labels.verbalizers["causal_lm"] == ["A", "B", "C", "D"]
    held_out = HUB_DATASETS["belebele"].held_out
    splits = {
        (lang, split): load_split(out, lang, split, 4)
        for lang in ("eng_Latn", "deu_Latn")
        for split in ("train", "validation", "test")
    }
    sizes = {split: len(splits["eng_Latn", split]) for split in ("train", "validation", "test")}
    assert sizes == {"train": 2 * held_out.train, "validation": 2 * held_out.validation, "test": 2 * 10}
    first = splits["eng_Latn", "test"].iloc[0]
    number = int(first["text"].split("the ")[1].split("th")[0])  # the fixture's row number
    passage, question = f"Passage {number // 2} says that the {number}th thing happened.", number % 2 + 1
    assert first["text"] == f"P: {passage}\nQ: What happened in question {question}?"
    assert (
        first["text_pair"]
        == "\n".join(f"{letter}: answer {k} of {number}" for k, letter in enumerate("ABCD", 1)) + "\nAnswer:"
    )
    assert first["label"] == number % 4  # correct_answer_num "1".."4" -> 0..3
    passages = {key: {row_id.split("-q")[0] for row_id in frame["id"]} for key, frame in splits.items()}
    for split in ("train", "validation", "test"):
        assert passages["eng_Latn", split] == passages["deu_Latn", split]  # the same passages in each language
    assert not passages["eng_Latn", "train"] & passages["eng_Latn", "test"]
    assert not passages["eng_Latn", "validation"] & passages["eng_Latn", "test"]
    assert list((tmp_path / "datasets-cache" / "json").glob("*/*/*/*.arrow"))  # read by datasets' json builder


def test_a_belebele_answer_outside_one_to_four_is_refused_naming_the_row(hub_cache, tmp_path):
    answers = [str(i % 4 + 1) for i in range(180)]
    answers[3] = "5"
    belebele_file(snapshot_folder(hub_cache, "belebele") / "data" / "eng_Latn.jsonl", passages=90, answers=answers)
    with pytest.raises(SystemExit, match=r"eng_Latn.jsonl: row 3 has correct_answer_num '5'; expected 1..4"):
        download(tmp_path, "--hub", "belebele", "--languages", "eng_Latn")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "case", ["missing column", "unknown label", "empty split", "unknown category", "damaged file", "ragged tsv"]
)
def test_a_bad_hub_file_is_refused_naming_the_file_and_nothing_is_written(case, hub_cache, tmp_path):
    if case in ("unknown category", "ragged tsv"):
        bad = snapshot_folder(hub_cache, "sib200") / "data" / "eng_Latn" / "test.tsv"
        sib_file(bad, ["travel", "sport"])
        args, expected = ("--hub", "sib200", "--languages", "eng_Latn"), "row 1 has category 'sport'"
        if case == "ragged tsv":
            bad.write_text(bad.read_text() + "3\ttravel\tone field\ttoo many\n", encoding="utf-8")
            expected = "cannot be read as tsv by datasets"
    elif case == "damaged file":
        bad = snapshot_folder(hub_cache, "xnli") / "en" / "test-00000-of-00001.parquet"
        bad.write_bytes(bad.read_bytes()[:-20])  # a download cut short
        args, expected = ("--hub", "xnli", "--languages", "en"), "cannot be read as parquet by datasets"
    else:
        bad = snapshot_folder(hub_cache, "xnli") / "en" / "test-00000-of-00001.parquet"
        if case == "missing column":
            write_hub_parquet(bad, {"premise": pa.array(["p"]), "label": pa.array([0], pa.int64())}, NLI_FEATURES)
            expected = "missing column(s) ['hypothesis']"
        elif case == "unknown label":
            nli_file(bad, 3, labels=[0, 3, 1])
            expected = "row 1 has label 3; expected 0..2"
        else:
            nli_file(bad, 0)
            expected = "the split is empty"
        args = ("--hub", "xnli", "--languages", "en")
    with pytest.raises(SystemExit) as stop:
        download(tmp_path, *args)
    assert str(bad) in str(stop.value)
    assert expected in str(stop.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unknown_language_lists_the_data_sets_languages(hub_cache, tmp_path):
    with pytest.raises(SystemExit, match=r"xnli: unknown language\(s\) \['xx'\]; facebook/xnli has \['ar'"):
        download(tmp_path, "--hub", "xnli", "--languages", "en", "xx")


def test_offline_with_an_empty_cache_says_what_to_download_and_how(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    out = tmp_path / "xnli"
    result = subprocess.run(
        [sys.executable, "-m", "xlprompt", "download_dataset", "--hub", "xnli", "--languages", "en", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "facebook/xnli@b8dd5d7af511 is not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE=0" in message
    assert (
        "hf download facebook/xnli --repo-type dataset --revision b8dd5d7af51114dbda02c0e3f6133f332186418e "
        "--include 'en/train-00000-of-00001.parquet'"
    ) in message
    assert not out.exists()


def test_datasets_offline_mode_alone_keeps_the_download_offline(tmp_path, monkeypatch):
    """HF_DATASETS_OFFLINE=1 means offline to datasets even where HF_HUB_OFFLINE=0: no request is sent."""
    import datasets.config
    import huggingface_hub
    import huggingface_hub.constants
    from huggingface_hub.utils import _http

    def no_network():
        raise AssertionError("huggingface_hub opened an HTTP session")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # what HF_DATASETS_OFFLINE=1 sets
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    huggingface_hub.set_client_factory(no_network)  # every request of huggingface_hub needs its session
    try:
        with pytest.raises(SystemExit) as stop:
            download(tmp_path, "--hub", "sib200", "--languages", "eng_Latn")
    finally:
        huggingface_hub.set_client_factory(_http.default_client_factory)
    message = str(stop.value)
    assert "Davlan/sib200@38977a667f6f is not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE=0, HF_DATASETS_OFFLINE=1" in message
    assert "HF_DATASETS_OFFLINE=0" in message
    assert "--include 'data/eng_Latn/train.tsv'" in message
    assert not (tmp_path / "out").exists()


def test_a_cached_snapshot_without_the_language_asked_for_says_what_to_download(hub_cache, tmp_path):
    with pytest.raises(
        SystemExit,
        match=r"fr/train-00000-of-00001.parquet: missing from the cached snapshot.*"
        r"hf download facebook/xnli",
    ):
        download(tmp_path, "--hub", "xnli", "--languages", "en", "fr")


# Local files: a user's own data set (MLDoc, Taxi1500) in any of four formats.


def write_local(folder: Path, fmt: str, lang: str, split: str, frame: pd.DataFrame) -> None:
    path = folder / lang / f"{split}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)


def local_frame(rows: int, by_id: bool = False) -> pd.DataFrame:
    names = ["CCAT", "ECAT", "GCAT"]
    return pd.DataFrame(
        {
            "doc": [f"doc {i}" for i in range(rows)],
            "key": [f"k{i}" for i in range(rows)],
            "cat": [i % 3 if by_id else names[i % 3] for i in range(rows)],
        }
    )


def local_spec(folder: Path, fmt: str, **extra) -> str:
    spec = {
        "path": str(folder / "{lang}" / f"{{split}}.{fmt}"),
        "languages": ["en", "sw"],
        "labels": ["CCAT", "ECAT", "GCAT"],
        "text": "doc",
        "label": "cat",
        "id": "key",
        **extra,
    }
    return json.dumps(spec)


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl", "parquet"])
def test_local_files_of_every_format_become_the_contract(fmt, tmp_path):
    files = tmp_path / "mldoc"
    for split, rows in (("train", 6), ("validation", 3), ("test", 3)):
        write_local(files, fmt, "en", split, local_frame(rows, by_id=(split == "test")))  # names, or ids 0..2
    write_local(files, fmt, "sw", "test", local_frame(4))  # no training data: evaluation only
    out = tmp_path / "out" / "mldoc"
    download_dataset.main(
        ["--local", local_spec(files, fmt, label_words=["corporate", "economics", "government"]), "--out", str(out)]
    )
    labels = load_labels(out)
    assert labels.task == "mldoc"
    assert labels.names == ["CCAT", "ECAT", "GCAT"]
    assert labels.verbalizers["masked_lm"] == ["corporate", "economics", "government"]
    train = load_split(out, "en", "train", 3)
    assert list(train["label"]) == [0, 1, 2, 0, 1, 2]
    assert list(train["id"][:2]) == ["k0", "k1"]
    assert list(load_split(out, "en", "test", 3)["label"]) == [0, 1, 2]
    assert sorted(p.name for p in (out / "sw").iterdir()) == ["test.parquet"]
    assert json.loads((out / "manifest.json").read_text())["source"]["local"].endswith(f"{{split}}.{fmt}")


@pytest.mark.parametrize(
    "case", ["missing column", "unknown label", "train without validation", "no test", "unknown key"]
)
def test_bad_local_data_is_refused_naming_the_file(case, tmp_path):
    files = tmp_path / "mldoc"
    for split in ("train", "validation", "test"):
        write_local(files, "tsv", "en", split, local_frame(4))
    write_local(files, "tsv", "sw", "test", local_frame(4))
    extra = {}
    if case == "missing column":
        write_local(files, "tsv", "en", "validation", local_frame(4).drop(columns="cat"))
        bad, expected = files / "en" / "validation.tsv", "missing column(s) ['cat']"
    elif case == "unknown label":
        frame = local_frame(4)
        frame.loc[2, "cat"] = "XCAT"
        write_local(files, "tsv", "en", "train", frame)
        bad, expected = files / "en" / "train.tsv", "row 2 has label 'XCAT', which is not one of the labels"
    elif case == "train without validation":
        write_local(files, "tsv", "sw", "train", local_frame(4))
        bad, expected = files / "sw" / "validation.tsv", "missing, while"
    elif case == "no test":
        (files / "sw" / "test.tsv").unlink()
        bad, expected = files / "sw" / "test.tsv", "every language needs a test split"
    else:
        extra, bad, expected = {"colums": {}}, "local data", "unknown key(s) ['colums']"
    with pytest.raises(SystemExit) as stop:
        download_dataset.main(["--local", local_spec(files, "tsv", **extra), "--out", str(tmp_path / "out" / "m")])
    assert str(bad) in str(stop.value)
    assert expected in str(stop.value)
    assert not (tmp_path / "out").exists()


# Backbones: a snapshot in the cache -> resources/models/<name>, safetensors only.


def test_a_backbone_snapshot_is_copied_with_its_commit_and_loads(backbone_dir, hub_cache, tmp_path):
    from xlprompt.models.backbone import load_backbone
    from xlprompt.stages import download_backbone

    commit = "0123456789abcdef0123456789abcdef01234567"
    model_snapshot(hub_cache, "facebook/xglm-564M", commit, backbone_dir, ref="refs/pr/4")
    out = tmp_path / "models" / "xglm"
    download_backbone.main(["--hub", "facebook/xglm-564M", "--out", str(out)])
    meta = json.loads((out / "meta.json").read_text())
    assert meta["source"] == {"hub": "facebook/xglm-564M", "revision": "refs/pr/4", "commit": commit}
    assert meta["model_type"] == "xlm-roberta"
    assert "model.safetensors" in meta["files_sha256"]
    assert (out / "model.safetensors").read_bytes() == (backbone_dir / "model.safetensors").read_bytes()
    assert not any(p.is_symlink() for p in out.iterdir())
    model, _ = load_backbone(out)
    assert model.config.model_type == "xlm-roberta"


def test_a_backbone_with_only_pickled_weights_is_refused(backbone_dir, hub_cache, tmp_path):
    from xlprompt.stages import download_backbone

    folder = model_snapshot(hub_cache, "google/mt5-base", "f" * 40, backbone_dir)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(SystemExit, match="no safetensors weights at this revision"):
        download_backbone.main(["--hub", "google/mt5-base", "--revision", "f" * 40, "--out", str(tmp_path / "m")])
    assert not (tmp_path / "m").exists()


def test_an_unknown_backbone_needs_a_revision(tmp_path):
    from xlprompt.stages import download_backbone

    with pytest.raises(SystemExit, match="has no pinned revision here; give one"):
        download_backbone.main(["--hub", "someone/some-model", "--out", str(tmp_path / "m")])


def test_offline_backbone_download_says_what_to_fetch(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xlprompt",
            "download_backbone",
            "--hub",
            "FacebookAI/xlm-roberta-base",
            "--out",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert (
        "hf download FacebookAI/xlm-roberta-base --revision d817c5c1e3260a65d442640e4603279592d0f2f4 "
        "--include 'config.json'"
    ) in message
    assert not (tmp_path / "m").exists()


def test_one_task_from_two_sources_with_a_languages_own_label_words(hub_cache, tmp_path):
    sources = [
        {"hub": "xnli", "languages": ["en", "de"], "words_by_language": {"de": ["ja", "vielleicht", "nein"]}},
        {"hub": "americasnli", "languages": ["aym"]},
    ]
    out = tmp_path / "nli"
    download_dataset.main(["--sources", json.dumps(sources), "--out", str(out)])
    labels = load_labels(out)
    assert labels.task == "nli"
    assert languages_of(out) == ["aym", "de", "en"]
    assert labels.verbalizer("causal_lm", "de") == ["ja", "vielleicht", "nein"]
    assert labels.verbalizer("causal_lm", "aym") == labels.verbalizer("causal_lm") == ["yes", "maybe", "no"]
    bad = [{**sources[0], "words_by_language": {"de": ["ja", "nein"]}}]
    with pytest.raises(SystemExit, match=r"words_by_language.de: 2 words for 3 labels"):
        download_dataset.main(["--sources", json.dumps(bad), "--out", str(tmp_path / "bad")])
