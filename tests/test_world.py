"""The generated world: deterministic, and every knob does what it says."""

import json
import re

import pandas as pd
import pytest
from conftest import TINY_WORLD

from xlprompt.data.generated import generate_world
from xlprompt.data.world import LanguageSpec, WorldConfig, build_lexicon, realise_languages


def test_same_seed_gives_byte_identical_world(tmp_path, world_dir):
    again = tmp_path / "again"
    again.mkdir()
    generate_world(TINY_WORLD, again)
    assert json.loads((again / "manifest.json").read_text()) == json.loads((world_dir / "manifest.json").read_text())


def test_every_task_language_and_split_follows_the_data_contract(world_dir):
    for task, n_labels in (("topic", 3), ("nli", 3), ("paraphrase", 2), ("domain", 2), ("rte", 2)):
        labels = json.loads((world_dir / task / "labels.json").read_text())
        assert len(labels["names"]) == n_labels == len(labels["verbalizers"]["masked_lm"])
        for lang in ("en", "rev", "half", "far"):
            for split in ("train", "validation", "test"):
                frame = pd.read_parquet(world_dir / task / lang / f"{split}.parquet")
                assert list(frame.columns) == ["id", "text", "text_pair", "label"]
                assert sorted(frame["label"].unique()) == list(range(n_labels))
                assert frame["id"].is_unique
                assert frame["text_pair"].isna().all() == (task in ("topic", "domain"))


def test_test_sets_are_parallel_across_languages(world_dir):
    en = pd.read_parquet(world_dir / "topic" / "en" / "test.parquet")
    rev = pd.read_parquet(world_dir / "topic" / "rev" / "test.parquet")
    assert list(en["label"]) == list(rev["label"])
    # reversed word order: each sentence of rev is the mirror of the English one
    first_en = en["text"][0].split(" . ")[0].split()
    first_rev = rev["text"][0].split(" . ")[0].split()
    assert first_rev == first_en[::-1]


def test_shared_vocab_is_exact_and_other_scripts_share_no_letters():
    cfg = WorldConfig(
        languages=(LanguageSpec("en"), LanguageSpec("half", shared_vocab=0.5), LanguageSpec("gr", script="greek"))
    )
    lexicon = build_lexicon(cfg)
    langs = realise_languages(cfg, lexicon)
    half = langs["half"].words
    kept = sum(form == word for word, form in half.items() if word != ".")
    assert kept == pytest.approx(0.5 * len(half), abs=1)
    assert all(not re.search("[a-z]", form) for form in langs["gr"].words.values())


def test_distance_grows_with_each_knob():
    base = LanguageSpec("x")
    assert base.distance == 0
    assert LanguageSpec("x", shared_vocab=0.5).distance == 0.25
    assert LanguageSpec("x", word_order="reversed").distance == 0.2
    assert LanguageSpec("x", shared_vocab=0.0, script="greek", word_order="sov", morphology=1.0).distance == 0.9


def test_paraphrase_pairs_share_their_bag_of_words(world_dir):
    frame = pd.read_parquet(world_dir / "paraphrase" / "en" / "train.parquet")
    function = {"is", "by"}
    for text, pair in zip(frame["text"], frame["text_pair"]):
        assert sorted(w for w in text.split() if w not in function) == sorted(
            w for w in pair.split() if w not in function
        )


def test_bad_language_knob_is_rejected_with_its_name():
    with pytest.raises(ValueError, match="language zz: word_order"):
        LanguageSpec("zz", word_order="vso")


def test_related_tasks_share_their_structure(world_dir):
    """domain groups topics in pairs; rte's pairs are nli pairs with two labels merged."""
    assert json.loads((world_dir / "domain" / "labels.json").read_text())["names"] == ["sports+health", "politics"]
    assert json.loads((world_dir / "rte" / "labels.json").read_text())["names"] == ["entailment", "not_entailment"]
    lexicon = build_lexicon(TINY_WORLD)
    domain = pd.read_parquet(world_dir / "domain" / "en" / "train.parquet")
    # A domain-1 document (topic 2, politics) uses politics' nouns, never those of topics 0 or 1.
    own = set(lexicon.topic_nouns[2])
    other = set(lexicon.topic_nouns[0]) | set(lexicon.topic_nouns[1])
    words = set(" ".join(domain.loc[domain.label == 1, "text"]).split())
    assert words & own
    assert not words & other
    rte = pd.read_parquet(world_dir / "rte" / "en" / "train.parquet")
    negated = rte["text_pair"].str.split().map(lambda tokens: "not" in tokens)
    # contradiction (negated hypothesis) occurs only in not_entailment, and in about half of it
    assert not negated[rte.label == 0].any()
    assert 0.25 < negated[rte.label == 1].mean() < 0.75


CODE = '''"""A module."""

LIMIT = 3


def scaled(values, factor=2):
    """Each value times factor."""
    return [v * factor for v in values]
'''


@pytest.mark.parametrize(
    ("variant", "same"),
    [
        (CODE.replace("[v * factor for v in values]", "[\n        v * factor\n        for v in values\n    ]"), True),
        (CODE.replace("LIMIT = 3", "LIMIT = 3  # the limit, explained"), True),
        (CODE.replace('"""Each value times factor."""', '"""Every value, multiplied."""'), True),
        (CODE.replace('"""Each value times factor."""\n', ""), True),
        (CODE.replace("LIMIT = 3", "LIMIT = 4"), False),
        (CODE.replace("factor=2", "factor=3"), False),
    ],
)
def test_the_world_code_digest_follows_what_the_code_does_not_its_layout(tmp_path, variant, same):
    """The workflow regenerates the world (and reruns everything after it) when world_code_version changes: a
    reformatting, a comment or a docstring must not, a changed constant or default must."""
    from xlprompt.runtime.io import code_digest

    (tmp_path / "a.py").write_text(CODE)
    (tmp_path / "b.py").write_text(variant)
    assert (code_digest(tmp_path / "a.py") == code_digest(tmp_path / "b.py")) is same
