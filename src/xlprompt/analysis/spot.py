"""SPoT (Vu et al. 2022): prompts as task embeddings, transfer gains and source retrieval.

A task embedding is a prompt (L x d) saved at a fixed early training step. Two prompts'
similarity, as SPoT defines it:

- ``avg_cos(P1, P2) = cos(mean_i P1_i, mean_j P2_j)``
- ``tok_cos(P1, P2) = 1/(L1 L2) sum_i sum_j cos(P1_i, P2_j)``: every pair of tokens, not
  position-aligned, so prompts of different lengths compare too.

A source's similarity to a target is the mean over every pair of their seeds' prompts.
Retrieval ranks the sources of a target by similarity and reports, as SPoT's Table 3 does,
the target score without transfer, with the top-1 source, the best of the top 3, and with
the best source in hindsight (the oracle).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import pandas as pd
import torch
import torch.nn.functional as F

from xlprompt.runtime.settings import NeuronSettings

logger = logging.getLogger(__name__)

BASELINES = ("random", "label_words")  # target inits that start from no source
# Cross-model transfer (Su et al.): a prompt projected from another backbone, used as the
# target's initialisation (then tuned) or as it is (zero-shot).
CROSS_MODEL_INITS = ("projector", "projector_zero_shot")


def avg_cos(p1: torch.Tensor, p2: torch.Tensor) -> float:
    """Cosine of the two prompts' mean token vectors; p1: (L1, d), p2: (L2, d)."""
    return F.cosine_similarity(p1.double().mean(0), p2.double().mean(0), dim=0).item()


def tok_cos(p1: torch.Tensor, p2: torch.Tensor) -> float:
    """Mean cosine over all L1 x L2 pairs of token vectors."""
    a = F.normalize(p1.double(), dim=1)  # (L1, d)
    b = F.normalize(p2.double(), dim=1)  # (L2, d)
    return (a @ b.T).mean().item()


def flat_cos(p1: torch.Tensor, p2: torch.Tensor) -> float:
    """Cosine of the flattened prompts (position-aligned; same shape)."""
    return F.cosine_similarity(p1.double().flatten(), p2.double().flatten(), dim=0).item()


def euclidean(p1: torch.Tensor, p2: torch.Tensor) -> float:
    """Euclidean distance of the flattened prompts (a distance: smaller is more similar)."""
    return torch.linalg.vector_norm(p1.double() - p2.double()).item()


def euclidean_sim(p1: torch.Tensor, p2: torch.Tensor) -> float:
    """Su et al.'s Euclidean similarity, 1 / (1 + distance) of the flattened prompts (their
    Prompt-Transferability-1.0/caculate_metric_value_for_correlation.py, ``EuclideanDistances``): larger is
    more similar, so it ranks as the distance does, reversed; the mean over seeds differs."""
    return 1.0 / (1.0 + euclidean(p1, p2))


SIMILARITIES: dict[str, Callable[[torch.Tensor, torch.Tensor], float]] = {
    "avg_cos": avg_cos,
    "tok_cos": tok_cos,
    "flat_cos": flat_cos,
    "euclidean": euclidean,
    "euclidean_sim": euclidean_sim,
}
SPOT_SIMILARITIES = ("avg_cos", "tok_cos")  # SPoT's, on task embeddings (early snapshots)


def mean_similarity(first: list[torch.Tensor], second: list[torch.Tensor], metric: str) -> float:
    """Mean of ``metric`` over every pair (one prompt of each list: one per seed)."""
    fn = SIMILARITIES[metric]
    values = [fn(a, b) for a, b in itertools.product(first, second)]
    return sum(values) / len(values)


def similarity_table(
    sources: dict[str, list[torch.Tensor]],
    targets: dict[str, list[torch.Tensor]],
    metrics: tuple[str, ...] = SPOT_SIMILARITIES,
    embedding: str = "snapshot",
) -> pd.DataFrame:
    """One row per source, target, prompt length and metric: the mean over seed pairs.

    ``sources`` / ``targets``: name -> prompts (one per seed); prompts of each length are
    compared with those of the same length only. ``embedding`` says which prompts these are
    (``snapshot``: SPoT's task embeddings; ``final``: the trained prompts).
    """
    rows = []
    for source, target in itertools.product(sorted(sources), sorted(targets)):
        for length in sorted({p.shape[0] for p in sources[source]} & {p.shape[0] for p in targets[target]}):
            first = [p for p in sources[source] if p.shape[0] == length]
            second = [p for p in targets[target] if p.shape[0] == length]
            for metric in metrics:
                rows.append(
                    {
                        "source": source,
                        "target": target,
                        "prompt_length": length,
                        "metric": metric,
                        "embedding": embedding,
                        "layers": "prompt",
                        "value": mean_similarity(first, second, metric),
                        "pairs": len(first) * len(second),
                    }
                )
    if not rows:
        raise ValueError("similarity_table: no source and target prompts of the same length")
    return pd.DataFrame(rows)


def neuron_similarity_table(
    sources: dict[str, list[torch.Tensor]],
    targets: dict[str, list[torch.Tensor]],
    length: int,
    window: int = NeuronSettings.window,
    metrics: tuple[str, ...] = ("on", "jaccard"),
) -> pd.DataFrame:
    """Overlap of activated neurons (Su et al.'s ON; Jaccard) for every source and target.

    ``sources`` / ``targets``: name -> activations (n_layers, ffn), one per seed. One row per
    metric and layer range ('all', then windows of ``window`` layers), mean over seed pairs.
    """
    from xlprompt.analysis.neurons import windowed_overlap

    rows = []
    for source, target in itertools.product(sorted(sources), sorted(targets)):
        for metric in metrics:
            pairs = [
                windowed_overlap(a, b, window, metric) for a, b in itertools.product(sources[source], targets[target])
            ]
            for layers in pairs[0]:
                rows.append(
                    {
                        "source": source,
                        "target": target,
                        "prompt_length": length,
                        "metric": metric,
                        "embedding": "activations",
                        "layers": layers,
                        "value": sum(p[layers] for p in pairs) / len(pairs),
                        "pairs": len(pairs),
                    }
                )
    return pd.DataFrame(rows)


SIMILARITY_KEYS = ["metric", "embedding", "layers"]  # what one similarity measure is


TRANSFER_KEYS = [
    "model",
    "target",
    "prompt_length",
    "init",
    "source",
    "source_tasks",
    "source_language",
    "seed",
    "lang",
]


def transfer_table(results: list[dict]) -> pd.DataFrame:
    """Tidy rows from evaluate_transfer's files, with each run's gain over random init.

    ``gain`` compares runs of the same target, seed and language: value - value(random).
    Zero-shot pairs without a label map appear once per seed with ``applicable`` false and
    no value.
    """
    rows = []
    for result in results:
        for run in result["runs"]:
            keys = {
                "model": result["model"],
                "target": result["target"],
                "prompt_length": result["prompt_length"],
                "init": run["init"],
                "source": run["source"],
                "source_tasks": "+".join(run["source_tasks"]),
                "source_language": run["source_language"],
                "seed": run["seed"],
            }
            if not run["applicable"]:
                rows.append({**keys, "lang": "all", "metric": "accuracy", "value": float("nan"), "applicable": False})
                continue
            for row in run["rows"]:
                for metric in ("accuracy", "macro_f1"):
                    rows.append(
                        {**keys, "lang": row["lang"], "metric": metric, "value": row[metric], "applicable": True}
                    )
    if not rows:
        raise ValueError("transfer_table: no transfer results")
    table = pd.DataFrame(rows)
    base = table[table["init"] == "random"].set_index(["model", "target", "prompt_length", "seed", "lang", "metric"])[
        "value"
    ]
    if base.empty:
        raise ValueError("transfer_table: no random-init runs to compute gains against")
    run_keys = ["model", "target", "prompt_length", "seed", "lang", "metric"]
    table["gain"] = table["value"] - base.reindex(pd.MultiIndex.from_frame(table[run_keys])).to_numpy()
    return table.sort_values([*TRANSFER_KEYS, "metric"], kind="stable").reset_index(drop=True)


def source_scores(transfer: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Mean over seeds per model, target, length, init, source and language, plus lang 'mean'.

    'mean' is the mean over the evaluation languages of the per-language means.
    """
    data = transfer[(transfer["metric"] == metric) & transfer["applicable"]]
    keys = ["model", "target", "prompt_length", "init", "source"]
    per_lang = data.groupby([*keys, "lang"], sort=True)["value"].mean().reset_index()
    overall = per_lang.groupby(keys, sort=True)["value"].mean().reset_index().assign(lang="mean")
    return pd.concat([per_lang, overall], ignore_index=True)


def retrieval_table(transfer: pd.DataFrame, similarity: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """SPoT's retrieval: for every target, similarity and language, the score of no transfer,
    of the top-1 and best-of-top-3 retrieved sources, and of the oracle best source.

    Rows with target 'mean' average these scores over the targets.
    """
    scores = source_scores(transfer, metric)
    keys = ["model", "target", "prompt_length", "lang"]
    rows = []
    for (model, target, length, lang), group in scores.groupby(keys, sort=True):
        no_transfer = group.loc[group["init"] == "random", "value"]
        by_source = group[group["init"] == "transfer"].set_index("source")["value"]
        if no_transfer.empty or by_source.empty:
            continue
        oracle_source = by_source.idxmax()
        mine = similarity[(similarity["target"] == target) & (similarity["prompt_length"] == length)]
        for (sim_metric, embedding, layers), sims in mine.groupby(SIMILARITY_KEYS, sort=True):
            # Euclidean is a distance: the nearest source ranks first.
            ascending = sim_metric == "euclidean"
            ranked = (
                sims[sims["source"].isin(by_source.index)]
                .sort_values(["value", "source"], ascending=[ascending, True], kind="stable")["source"]
                .tolist()
            )
            if not ranked:
                continue
            rows.append(
                {
                    "model": model,
                    "target": target,
                    "prompt_length": length,
                    "similarity": sim_metric,
                    "embedding": embedding,
                    "layers": layers,
                    "lang": lang,
                    "metric": metric,
                    "no_transfer": no_transfer.iloc[0],
                    "top1_source": ranked[0],
                    "top1": by_source[ranked[0]],
                    "best_of_top3": by_source[ranked[:3]].max(),
                    "oracle_source": oracle_source,
                    "oracle": by_source[oracle_source],
                    "sources": len(ranked),
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError("retrieval_table: no target has both random-init and transferred runs with similarities")
    numbers = ["no_transfer", "top1", "best_of_top3", "oracle"]
    mean = (
        table.groupby(["model", "prompt_length", "similarity", "embedding", "layers", "lang", "metric"], sort=True)[
            numbers
        ]
        .mean()
        .reset_index()
        .assign(target="mean", top1_source="", oracle_source="", sources=0)
    )
    return pd.concat([table, mean[table.columns]], ignore_index=True)
