"""Intervals and paired comparisons of the tables, from per-example predictions files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xlprompt.analysis.predictions import comparisons_table, interval_table, read_predictions, with_intervals

LABELS = ["yes", "no"]


def _predictions(tmp_path, method: str, seed: int, correct_by_lang: dict[str, list[bool]]):
    rows = []
    for lang, correct in correct_by_lang.items():
        for i, right in enumerate(correct):
            gold = LABELS[i % 2]
            pred = gold if right else LABELS[1 - i % 2]
            rows.append(
                {
                    "model": "m",
                    "task": "t",
                    "method": method,
                    "prompt_length": 4,
                    "source": "none",
                    "seed": seed,
                    "lang": lang,
                    "example_id": f"{lang}-{i}",
                    "gold": gold,
                    "pred": pred,
                    "score_yes": float(pred == "yes"),
                    "score_no": float(pred == "no"),
                }
            )
    path = tmp_path / f"{method}-{seed}.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_intervals_hold_each_rows_value_and_widen_with_a_second_seed(tmp_path):
    rng = np.random.default_rng(0)
    paths = [
        _predictions(tmp_path, "spt", seed, {"en": list(rng.random(200) < 0.8), "fr": list(rng.random(200) < 0.6)})
        for seed in (0, 1)
    ]
    predictions = read_predictions(paths)
    per_seed = interval_table(predictions, over_seeds=False, resamples=500)
    assert len(per_seed) == 2 * 2 * 2  # seeds x languages x metrics
    accuracy = (
        predictions.assign(right=predictions.gold_code == predictions.pred_code)
        .groupby(["seed", "lang"])["right"]
        .mean()
    )
    for row in per_seed[per_seed.metric == "accuracy"].itertuples():
        assert row.low < accuracy[(row.seed, row.lang)] < row.high
        assert 0.05 < row.high - row.low < 0.2  # about 4 standard errors of 200 examples
    over_seeds = interval_table(predictions, over_seeds=True, resamples=500)
    assert len(over_seeds) == 2 * 2
    assert "seed" not in over_seeds


def test_a_table_row_without_predictions_is_an_error(tmp_path):
    predictions = read_predictions([_predictions(tmp_path, "spt", 0, {"en": [True, False, True]})])
    table = pd.DataFrame(
        {
            "model": ["m"] * 2,
            "task": "t",
            "method": "spt",
            "prompt_length": 4,
            "source": "none",
            "seed": 0,
            "lang": ["en", "de"],
            "metric": "accuracy",
            "value": 0.5,
        }
    )
    intervals = interval_table(predictions, over_seeds=False, resamples=100)
    with pytest.raises(ValueError, match="1 table rows have no predictions"):
        with_intervals(table, intervals)


def test_comparisons_find_a_real_difference_per_language_and_correct_over_languages(tmp_path):
    """spt right on every example, full_ft on every other one: a difference of 0.5 beyond chance in
    each language; untrained equals full_ft example for example: difference 0, p = 1."""
    half = [i % 2 == 0 for i in range(60)]
    paths = [
        _predictions(tmp_path, "spt", 0, {"en": [True] * 60, "fr": [True] * 60}),
        _predictions(tmp_path, "full_ft", 0, {"en": half, "fr": half}),
        _predictions(tmp_path, "untrained", 0, {"en": half, "fr": half}),
    ]
    table = comparisons_table(read_predictions(paths), ["spt", "full_ft", "untrained"], resamples=999)
    assert set(zip(table.method_a, table.method_b)) == {
        ("spt", "full_ft"),
        ("spt", "untrained"),
        ("full_ft", "untrained"),
    }
    spt = table[(table.method_a == "spt") & (table.method_b == "full_ft")].set_index("lang")
    assert list(spt.index) == ["en", "fr", "all"]
    assert spt.loc["all", "examples"] == 120
    assert spt["difference"].tolist() == pytest.approx([0.5] * 3)
    assert (spt["better"] == "spt").all()
    assert (spt["p_holm"] >= spt["p_value"]).all()
    # Holm over two languages: the smaller p-value doubles
    assert spt.loc["en", "p_holm"] == pytest.approx(
        min(1.0, 2 * min(spt.loc["en", "p_value"], spt.loc["fr", "p_value"]))
    )
    same = table[table.method_a == "full_ft"]
    assert same["difference"].tolist() == [0.0] * 3
    assert (same["p_value"] == 1.0).all()
    assert (same["better"] == "").all()


def test_comparisons_refuse_methods_scored_on_different_examples(tmp_path):
    paths = [
        _predictions(tmp_path, "spt", 0, {"en": [True] * 4}),
        _predictions(tmp_path, "full_ft", 0, {"en": [True] * 5}),
    ]
    with pytest.raises(ValueError, match="not scored on the same test examples"):
        comparisons_table(read_predictions(paths))


def test_language_groups_split_the_other_languages_at_their_median_distance():
    from xlprompt.analysis.aggregate import language_groups

    languages = pd.DataFrame({"lang": ["en", "a", "b", "c", "d"], "distance": [0.0, 0.1, 0.2, 0.5, 0.9]})
    assert language_groups(languages, "en") == {"train": ["en"], "near": ["a", "b"], "far": ["c", "d"]}
    real = pd.DataFrame({"lang": ["en", "de", "sw"], "distance": [float("nan")] * 3})  # Hub data: no distances
    assert language_groups(real, "en") == {"train": ["en"], "near": ["de", "sw"], "far": []}
