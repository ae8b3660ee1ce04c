"""Hub data sets (XNLI, PAWS-X, SIB-200, AmericasNLI, Belebele): where each lives and how it becomes the contract.

Each is fetched at a pinned revision with ``huggingface_hub.snapshot_download``, only the files
of the languages asked for, into the Hugging Face Hub cache; each file is then read through
``datasets.load_dataset`` with datasets' own packaged builder (``parquet``, or ``csv`` for
SIB-200's TSVs) on that local file, so datasets' cache (``HF_DATASETS_CACHE``) and offline mode
(``HF_DATASETS_OFFLINE``) apply as for any Hugging Face user. Not ``load_dataset(repo_id,
revision=...)`` itself: offline, datasets 5.2 refuses every Hub repository before it looks at the
Hub cache ("Couldn't reach 'facebook/xnli' on the Hub (OfflineModeIsEnabled)", datasets/load.py)
and falls back only to a data set it prepared earlier, at whatever revision that was; this way
one code path serves online and offline runs, at the pinned revision. Every revision pinned here
holds parquet or TSV files (datasets 5 no longer runs loading scripts). The ids, revisions, file
layouts, columns and label encodings, with their sources, are in docs/hub-sources.md.

A converter turns one downloaded file (in the Hub's own schema) into the contract's columns
``id, text, text_pair, label`` and refuses, naming the file, a missing column, an unknown label
or an empty split: the tests write files in each data set's exact Hub schema and convert them.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from xlprompt.data.source_files import SourceDataError, require_columns

logger = logging.getLogger(__name__)


NLI_NAMES = ("entailment", "neutral", "contradiction")  # the Hub's ClassLabel order (0, 1, 2)
NLI_WORDS = ("yes", "maybe", "no")  # Zhao & Schutze 2021's verbalizer for XLM-R on XNLI
SIB_NAMES = ("science/technology", "travel", "politics", "sports", "health", "entertainment", "geography")
SIB_WORDS = ("science", "travel", "politics", "sports", "health", "entertainment", "earth")  # Philippy et al. 2024
# Belebele's answers, read as lm-evaluation-harness scores them: the letter of each choice after "Answer:".
BELEBELE_LETTERS = ("A", "B", "C", "D")


class HubDataError(SourceDataError):
    """A Hub file that does not have the schema its data set should have."""


Converter = Callable[[pd.DataFrame, Path], pd.DataFrame]
ALL = "all"  # languages: all -- every language the data set has
PASSAGE = "passage"  # a converter's extra column: the group a held-out split keeps whole (HeldOut)


@dataclass(frozen=True)
class HeldOut:
    """Training and validation splits carved out of a data set that has a test split only (Belebele), by
    whole passages: the same passages in every language (the converter's ``passage`` column, one id per
    passage across languages), so that no test question in any language shares a passage, or its
    translation, with a training one. Passages are ranked by the sha256 of their id: the first ``train``
    go to train, the next ``validation`` to validation, the rest stay in test.
    """

    train: int
    validation: int

    def split(self, frame: pd.DataFrame, path: Path) -> dict[str, pd.DataFrame]:
        ranked = sorted(frame[PASSAGE].unique(), key=lambda p: hashlib.sha256(str(p).encode()).hexdigest())
        if len(ranked) <= self.train + self.validation:
            raise HubDataError(
                f"{path}: {len(ranked)} passages, {self.train} + {self.validation} held out for training and "
                "validation would leave no test"
            )
        chosen = {
            "train": set(ranked[: self.train]),
            "validation": set(ranked[self.train : self.train + self.validation]),
        }
        chosen["test"] = set(ranked[self.train + self.validation :])
        return {
            split: frame[frame[PASSAGE].isin(passages)].drop(columns=PASSAGE).reset_index(drop=True)
            for split, passages in chosen.items()
        }


@dataclass(frozen=True)
class HubDataset:
    """One Hub data set: its repository at a pinned revision, its files and its label space."""

    name: str
    repo_id: str
    revision: str
    task: str
    label_names: tuple[str, ...]
    label_words: tuple[str, ...]  # English by default, one per label, for every model family
    split_files: Mapping[str, str]  # contract split -> file in the repo, "{lang}" filled in
    convert: Converter
    languages: tuple[str, ...] | None = None  # None: whatever the repo has (SIB-200's 205 codes)
    held_out: HeldOut | None = None  # train and validation carved out of its test split (Belebele)
    notes: str = field(default="", compare=False)

    @property
    def file_format(self) -> str:
        suffix = Path(next(iter(self.split_files.values()))).suffix
        return {".tsv": "tsv", ".jsonl": "json"}.get(suffix, "parquet")

    @property
    def evaluation_only(self) -> bool:
        """No training split: its languages can be evaluated on, never trained on."""
        return "train" not in self.split_files and self.held_out is None

    def files(self, lang: str) -> dict[str, str]:
        """Contract split -> path of that split's file for ``lang`` in the repository."""
        return {split: template.format(lang=lang) for split, template in self.split_files.items()}

    def allow_patterns(self, languages: list[str]) -> list[str]:
        """What snapshot_download fetches: exactly the split files of these languages (``all``: of every one)."""
        if languages == [ALL]:
            return list(self.files("*").values())
        return [path for lang in languages for path in self.files(lang).values()]

    def languages_in(self, folder: Path) -> list[str]:
        """The languages a snapshot folder holds (those with a test file)."""
        parts = Path(self.split_files["test"]).parts
        depth = next(i for i, part in enumerate(parts) if "{lang}" in part)
        before, after = parts[depth].split("{lang}")
        found = [
            path.relative_to(folder).parts[depth] for path in folder.glob(self.split_files["test"].format(lang="*"))
        ]
        return sorted(name[len(before) : len(name) - len(after)] for name in found)

    def check_languages(self, languages: list[str]) -> None:
        if not languages:
            raise HubDataError(f"{self.name}: no languages asked for")
        if languages == [ALL]:
            return
        if self.languages is not None:
            unknown = [lang for lang in languages if lang not in self.languages]
            if unknown:
                raise HubDataError(
                    f"{self.name}: unknown language(s) {unknown}; {self.repo_id} has {list(self.languages)}"
                )


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    require_columns(frame, list(columns), path, f"the Hub schema has {list(columns)}")


def _integer_labels(values: pd.Series, n_labels: int, path: Path, dropped: tuple[int, ...] = ()) -> pd.Series:
    """Labels as stored by a ClassLabel (0..n-1); any other value is an error naming the row."""
    numeric = pd.to_numeric(values, errors="coerce")
    keep = ~numeric.isin(dropped)
    bad = numeric.index[keep & ~numeric.isin(range(n_labels))]
    if len(bad):
        row = int(bad[0])
        value = values.iloc[row]
        value = value.item() if hasattr(value, "item") else value  # numpy scalar -> plain, for the message
        raise HubDataError(f"{path}: row {row} has label {value!r}; expected 0..{n_labels - 1}")
    labels: pd.Series = numeric.where(keep)
    return labels


def _row_ids(frame: pd.DataFrame, column: str | None) -> pd.Series:
    """The source's own ids where it has unique ones (traceable), else row numbers."""
    if column is not None and frame[column].notna().all() and not frame[column].duplicated().any():
        return frame[column].astype(str)
    return pd.Series([str(i) for i in range(len(frame))], index=frame.index)


def convert_nli(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """XNLI and AmericasNLI (one language's config): premise, hypothesis, label 0/1/2."""
    _require_columns(frame, ("premise", "hypothesis", "label"), path)
    converted: pd.DataFrame = pd.DataFrame(
        {
            "id": _row_ids(frame, None),
            "text": frame["premise"],
            "text_pair": frame["hypothesis"],
            "label": _integer_labels(frame["label"], 3, path),
        }
    )
    return converted


def convert_pawsx(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """PAWS-X: id, sentence1, sentence2, label 0/1 (1 = paraphrase).

    The data set's card says missing or wrong labels were replaced with -1: such rows carry no
    label, so they are dropped (and counted in the log); any other value is an error.
    """
    _require_columns(frame, ("id", "sentence1", "sentence2", "label"), path)
    labels = _integer_labels(frame["label"], 2, path, dropped=(-1,))
    unlabelled = int(labels.isna().sum())
    if unlabelled:
        logger.warning("%s: %d row(s) with label -1 (no label) dropped", path, unlabelled)
    frame = frame[labels.notna()]
    if frame.empty:
        raise HubDataError(f"{path}: the split is empty once rows without a label (-1) are dropped")
    converted: pd.DataFrame = pd.DataFrame(
        {
            "id": _row_ids(frame, "id"),
            "text": frame["sentence1"],
            "text_pair": frame["sentence2"],
            "label": labels[labels.notna()].astype("int64"),
        }
    )
    return converted


def convert_sib200(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """SIB-200 (TSV): index_id, category (one of 7 strings), text."""
    _require_columns(frame, ("index_id", "category", "text"), path)
    index = {name: i for i, name in enumerate(SIB_NAMES)}
    unknown = frame.index[~frame["category"].isin(list(index))]
    if len(unknown):
        row = int(unknown[0])
        raise HubDataError(
            f"{path}: row {row} has category {frame['category'].iloc[row]!r}; "
            f"SIB-200's categories are {list(SIB_NAMES)}"
        )
    converted: pd.DataFrame = pd.DataFrame(
        {
            "id": _row_ids(frame, "index_id"),
            "text": frame["text"],
            "text_pair": None,
            "label": frame["category"].map(index).astype("int64"),
        }
    )
    return converted


def convert_belebele(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Belebele (one language's JSONL): a FLORES passage, a question and four answers, the right one
    ``correct_answer_num`` "1".."4". Laid out as lm-evaluation-harness's belebele task lays it out, the passage
    and question as the text (``P: ...`` / ``Q: ...``) and the lettered answers with ``Answer:`` as the pair,
    the label the letter (A-D). The id names the passage (the sha256 of its FLORES link, shared by every
    language) and the question's number; ``passage`` keeps the passage for a held-out split."""
    columns = ("link", "question_number", "flores_passage", "question", *[f"mc_answer{i}" for i in range(1, 5)])
    _require_columns(frame, (*columns, "correct_answer_num"), path)
    answer = frame["correct_answer_num"].astype(str).str.strip()
    bad = frame.index[~answer.isin(["1", "2", "3", "4"])]
    if len(bad):
        row = int(bad[0])
        raise HubDataError(
            f"{path}: row {row} has correct_answer_num {frame['correct_answer_num'].iloc[row]!r}; expected 1..4"
        )
    labels = answer.astype("int64") - 1
    passage = frame["link"].map(lambda link: hashlib.sha256(str(link).encode()).hexdigest()[:12])
    answers = [f"{letter}: " + frame[f"mc_answer{i}"].astype(str) for i, letter in enumerate(BELEBELE_LETTERS, start=1)]
    converted: pd.DataFrame = pd.DataFrame(
        {
            "id": passage + "-q" + frame["question_number"].astype(str),
            "text": "P: " + frame["flores_passage"].astype(str) + "\nQ: " + frame["question"].astype(str),
            "text_pair": answers[0] + "\n" + answers[1] + "\n" + answers[2] + "\n" + answers[3] + "\nAnswer:",
            "label": labels,
            PASSAGE: passage,
        }
    )
    if converted["id"].duplicated().any():
        raise HubDataError(f"{path}: two rows with one passage link and question number")
    return converted


def _parquet_splits(
    lang_folder: str = "{lang}", splits: tuple[str, ...] = ("train", "validation", "test")
) -> dict[str, str]:
    return {split: f"{lang_folder}/{split}-00000-of-00001.parquet" for split in splits}


HUB_DATASETS: dict[str, HubDataset] = {
    dataset.name: dataset
    for dataset in (
        HubDataset(
            name="xnli",
            repo_id="facebook/xnli",
            revision="b8dd5d7af51114dbda02c0e3f6133f332186418e",
            task="nli",
            label_names=NLI_NAMES,
            label_words=NLI_WORDS,
            split_files=_parquet_splits(),
            convert=convert_nli,
            languages=("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"),
        ),
        HubDataset(
            name="americasnli",
            repo_id="nala-cub/americas_nli",
            revision="aa389759092cb553655aa4002a1a28f4ac78657b",
            task="nli",
            label_names=NLI_NAMES,
            label_words=NLI_WORDS,
            split_files=_parquet_splits(splits=("validation", "test")),
            convert=convert_nli,
            languages=("aym", "bzd", "cni", "gn", "hch", "nah", "oto", "quy", "shp", "tar"),
        ),
        HubDataset(
            name="pawsx",
            repo_id="google-research-datasets/paws-x",
            revision="4cd8187c404bda33cb1f62b49b001115862acf37",
            task="paraphrase",
            label_names=("different", "paraphrase"),
            label_words=("no", "yes"),
            split_files=_parquet_splits(),
            convert=convert_pawsx,
            languages=("de", "en", "es", "fr", "ja", "ko", "zh"),
        ),
        HubDataset(
            name="sib200",
            repo_id="Davlan/sib200",
            revision="38977a667f6fc264d5c26ec57a01e16db040b358",
            task="topic",
            label_names=SIB_NAMES,
            label_words=SIB_WORDS,
            split_files={
                "train": "data/{lang}/train.tsv",
                "validation": "data/{lang}/dev.tsv",
                "test": "data/{lang}/test.tsv",
            },
            convert=convert_sib200,
        ),
        HubDataset(
            name="belebele",
            repo_id="facebook/belebele",
            revision="72d7d6891963b00ef52bb94cf7256000ef41ef0b",
            task="reading",
            label_names=BELEBELE_LETTERS,
            label_words=BELEBELE_LETTERS,
            split_files={"test": "data/{lang}.jsonl"},
            convert=convert_belebele,
            # 488 passages, 900 questions in every language; about 12% of the questions train, 4% validate.
            held_out=HeldOut(train=60, validation=20),
        ),
    )
}


def hub_dataset(name: str) -> HubDataset:
    if name not in HUB_DATASETS:
        raise HubDataError(f"unknown Hub data set {name!r}; known: {sorted(HUB_DATASETS)}")
    return HUB_DATASETS[name]


def datasets_offline() -> bool:
    """datasets' offline switch as datasets itself reads it: HF_DATASETS_OFFLINE where set, else HF_HUB_OFFLINE."""
    import datasets.config

    return bool(datasets.config.HF_HUB_OFFLINE)


def read_hub_file(path: Path, file_format: str) -> pd.DataFrame:
    """One file of a Hub snapshot, in the Hub's schema, read by datasets' packaged builder on that local file.

    datasets keeps an Arrow copy in its cache (HF_DATASETS_CACHE), keyed by the file's path and
    modification time, and needs no network. Parquet keeps the Hub's features (ClassLabel ids as
    integers, unchecked: the converter names a bad row); TSV fields are read verbatim as strings,
    since texts contain quotes. A file datasets cannot read is an error naming it.
    """
    import datasets
    import pyarrow.parquet as pq

    datasets.disable_progress_bars()  # one bar per file would bury the job's log; write_dataset logs the rows
    try:
        if file_format == "json":  # JSON Lines: one object per row, as the Hub's viewer reads it
            rows = datasets.load_dataset("json", data_files=str(path), split="train")
        elif file_format == "parquet":
            # datasets' parquet builder fails on a file without rows ("BatchSize must be greater than 0").
            if pq.read_metadata(path).num_rows == 0:
                raise HubDataError(f"{path}: the split is empty")
            rows = datasets.load_dataset("parquet", data_files=str(path), split="train")
        else:
            with path.open(encoding="utf-8") as tsv:
                header = tsv.readline().rstrip("\r\n").split("\t")
            rows = datasets.load_dataset(
                "csv",
                data_files=str(path),
                split="train",
                sep="\t",
                quoting=csv.QUOTE_NONE,
                keep_default_na=False,
                features=datasets.Features({column: datasets.Value("string") for column in header}),
            )
    except HubDataError:
        raise
    except Exception as err:  # datasets wraps the reader's error (pyarrow's, pandas') in DatasetGenerationError
        cause = err.__cause__ or err
        raise HubDataError(
            f"{path}: cannot be read as {file_format} by datasets ({type(cause).__name__}: {cause})"
        ) from None
    frame: pd.DataFrame = rows.to_pandas()
    return frame


# Backbones: the revision each is pinned to when the config gives none. XGLM and mT5 have only
# pickled weights on main; their safetensors conversions live in the Hub's PR branches, whose
# commit snapshot_download resolves and download_backbone records.
HUB_BACKBONES: dict[str, str] = {
    "FacebookAI/xlm-roberta-base": "d817c5c1e3260a65d442640e4603279592d0f2f4",
    "google-bert/bert-base-multilingual-cased": "3f076fdb1ab68d5b2880cb87a0886f315b8146f8",
    "bigscience/bloom-560m": "ac2ae5fab2ce3f9f40dc79b5ca9f637430d24971",
    "facebook/xglm-564M": "refs/pr/4",
    "google/mt5-base": "refs/pr/5",
    # Decoder LLMs: a commit of main that public code downloads from (docs/hub-sources.md, "Decoder LLMs");
    # Llama and Gemma are gated (their licence accepted on the model's page, then `hf auth login` or HF_TOKEN).
    "Qwen/Qwen2.5-0.5B": "060db6499f32faf8b98477b0a26969ef7d8b9987",
    "Qwen/Qwen2.5-1.5B": "8faed761d45a263340a0528343f099c05c9a4323",
    "Qwen/Qwen3-0.6B-Base": "da87bfb608c14b7cf20ba1ce41287e8de496c0cd",
    "meta-llama/Llama-3.2-1B": "4e20de362430cd3b72f300e6b0f18e50e7166e08",
    "meta-llama/Llama-3.1-8B": "d04e592bb4f6aa9cfee91e2e20afa771667e1d4b",
    "google/gemma-2-2b": "c5ebcd40d208330abc697524c919956e692655cf",
    "google/gemma-3-1b-pt": "fcf18a2a879aab110ca39f8bffbccd5d49d8eb29",
    "mistralai/Mistral-7B-v0.3": "caa1feb0e54d415e2df31207e5f4e273e33509b1",
}
# Weights, config and tokenizer only: no pickles, no ONNX/TF/Flax copies (bloom-560m's onnx/ is 9.8 GB).
BACKBONE_FILES = [
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "vocab.txt",
]


def backbone_revision(repo_id: str, revision: str | None) -> str:
    if revision:
        return revision
    if repo_id not in HUB_BACKBONES:
        raise HubDataError(
            f"backbone {repo_id!r} has no pinned revision here; give one (backbone.revision in the "
            f"config, a commit hash from the model's 'Files and versions' page)"
        )
    return HUB_BACKBONES[repo_id]
