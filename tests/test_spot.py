"""SPoT: prompt similarity, transfer from a source prompt, multi-task sources, zero-shot reuse,
and the transfer and retrieval tables."""

import math

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from xlprompt.analysis.spot import avg_cos, mean_similarity, retrieval_table, similarity_table, tok_cos, transfer_table
from xlprompt.data.encoding import EncodedSplit, restrict_to_choices
from xlprompt.methods.artifacts import load_trained
from xlprompt.methods.training import train_prompt
from xlprompt.models.predict import predict
from xlprompt.runtime.io import read_json
from xlprompt.runtime.settings import TrainConfig

FAST = {"prompt_length": 4, "steps": 6, "batch_size": 8, "eval_every": 3, "lr": 0.3, "max_length": 48}

# ---------------------------------------------------------------------------------------
# Similarities against hand-computed values
# ---------------------------------------------------------------------------------------


def test_avg_cos_is_the_cosine_of_the_mean_tokens():
    p1 = torch.tensor([[3.0, 4.0]])
    p2 = torch.tensor([[4.0, 3.0], [0.0, -5.0]])
    # mean of p2 = (2, -1): cos((3, 4), (2, -1)) = (6 - 4) / (5 * sqrt(5))
    assert avg_cos(p1, p2) == pytest.approx(2 / (5 * math.sqrt(5)), abs=1e-12)
    assert avg_cos(p2, p1) == pytest.approx(avg_cos(p1, p2), abs=1e-12)


def test_tok_cos_averages_every_token_pair_for_prompts_of_different_lengths():
    p1 = torch.tensor([[3.0, 4.0]])  # L1 = 1
    p2 = torch.tensor([[4.0, 3.0], [0.0, -5.0]])  # L2 = 2
    # cos((3,4),(4,3)) = 24/25; cos((3,4),(0,-5)) = -20/25; mean = 0.08
    assert tok_cos(p1, p2) == pytest.approx(0.08, abs=1e-12)
    # Not position-aligned: all L1 x L2 = 4 pairs, each 1/sqrt(2) here.
    assert tok_cos(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 1.0], [2.0, 2.0]])) == pytest.approx(
        1 / math.sqrt(2), abs=1e-12
    )


def test_similarity_is_averaged_over_every_pair_of_seeds():
    a = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])]
    b = [torch.tensor([[1.0, 0.0]])]
    assert mean_similarity(a, b, "avg_cos") == pytest.approx(0.5)  # (1 + 0) / 2
    table = similarity_table({"src": a}, {"tgt": b, "other": [torch.ones(3, 2)]})
    row = table[(table.target == "tgt") & (table.metric == "tok_cos")].iloc[0]
    assert (row.value, row.pairs, row.prompt_length) == (pytest.approx(0.5), 2, 1)
    # Prompts of different lengths are not compared: "other" has length 3, the source length 1.
    assert set(table.target) == {"tgt"}


# ---------------------------------------------------------------------------------------
# Training from a source prompt, and multi-task sources
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_dir(world_dir, backbone_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("spot") / "topic-source"
    train_prompt(backbone_dir, world_dir / "topic", TrainConfig(method="spt", snapshot_step=3, **FAST), out)
    return out


def test_transferred_prompt_starts_exactly_from_the_source_prompt(
    world_dir, backbone_dir, source_dir, tmp_path, monkeypatch
):
    from xlprompt.methods import training as train_module

    first = []
    real_step = train_module.train_step

    def spy(model, optimizer, batch, *rest):
        if not first:
            first.append(model.prompt().detach().clone())
        return real_step(model, optimizer, batch, *rest)

    monkeypatch.setattr(train_module, "train_step", spy)
    cfg = TrainConfig(method="spt", init="source", seed=7, **FAST)
    train_prompt(backbone_dir, world_dir / "domain", cfg, tmp_path / "target", source=source_dir)
    source = load_file(source_dir / "prompt.safetensors")["prompt"]
    assert torch.equal(first[0], source)
    target = load_file(tmp_path / "target" / "prompt.safetensors")
    assert torch.equal(target["prompt_init"], source)
    assert not torch.equal(target["prompt"], source), "the target prompt trained on from there"


def test_transfer_rejects_a_source_of_another_length_or_no_source(world_dir, backbone_dir, source_dir, tmp_path):
    longer = TrainConfig(method="spt", init="source", **{**FAST, "prompt_length": 6})
    with pytest.raises(
        ValueError, match=r"source prompt is \(4, 32\).*target prompt \(6, 32\): transfer needs the same length"
    ):
        train_prompt(backbone_dir, world_dir / "domain", longer, tmp_path / "a", source=source_dir)
    with pytest.raises(ValueError, match="init 'source' needs a source prompt"):
        train_prompt(
            backbone_dir, world_dir / "domain", TrainConfig(method="spt", init="source", **FAST), tmp_path / "b"
        )
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_snapshot_is_the_prompt_after_the_snapshot_step(world_dir, backbone_dir, tmp_path, monkeypatch):
    from xlprompt.methods import training as train_module

    after = []
    real_step = train_module.train_step

    def spy(model, optimizer, batch, *rest):
        loss = real_step(model, optimizer, batch, *rest)
        after.append(model.prompt().detach().clone())
        return loss

    monkeypatch.setattr(train_module, "train_step", spy)
    train_prompt(backbone_dir, world_dir / "topic", TrainConfig(method="spt", snapshot_step=3, **FAST), tmp_path / "p")
    tensors = load_file(tmp_path / "p" / "prompt.safetensors")
    assert read_json(tmp_path / "p" / "meta.json")["snapshot_step"] == 3
    assert torch.equal(tensors["prompt_snapshot"], after[2])
    assert not torch.equal(tensors["prompt_snapshot"], after[1])
    assert not torch.equal(tensors["prompt_snapshot"], after[3])


def test_restrict_to_choices_keeps_each_rows_own_task():
    logits = torch.zeros(2, 5)
    batch = {"choices": torch.tensor([[0, 3], [3, 5]])}
    masked = restrict_to_choices(logits, batch)
    assert torch.isinf(masked[0, 3:]).all()
    assert torch.isfinite(masked[0, :3]).all()
    assert torch.isinf(masked[1, :3]).all()
    assert torch.isfinite(masked[1, 3:]).all()
    joined = EncodedSplit.concatenate([EncodedSplit([[1]], [0], [2]), EncodedSplit([[1]], [0], [1])], [3, 2])
    assert joined.labels == [2, 4]
    assert joined.choices == [(0, 3), (3, 5)]


def test_multi_task_prompt_trains_on_both_tasks_and_reads_each_through_its_own_words(world_dir, backbone_dir, tmp_path):
    out = tmp_path / "mix"
    summary = train_prompt(
        backbone_dir, [world_dir / "topic", world_dir / "nli"], TrainConfig(method="spt", **FAST), out
    )
    meta = read_json(out / "meta.json")
    assert meta["task"] == "topic+nli"
    assert meta["tasks"] == ["topic", "nli"]
    assert summary["train_examples"] == 2 * 3 * 12  # 3 topics and 3 nli labels, 12 per class each
    with pytest.raises(ValueError, match="name one of them"):
        load_trained(out, backbone_dir)
    nli_model, _ = load_trained(out, backbone_dir, task="nli")
    assert (
        nli_model.verbalizer_ids.tolist()
        == load_trained(out, backbone_dir, task="topic")[0].verbalizer_ids.tolist()[:3]
    )


def test_zero_shot_maps_source_predictions_onto_target_labels(world_dir, backbone_dir, source_dir, tmp_path):
    from xlprompt.analysis.transfer_metrics import evaluate_transfer
    from xlprompt.data.contract import load_split
    from xlprompt.data.encoding import encode_split

    topic_to_domain = {"sports": "sports+health", "health": "sports+health", "politics": "politics"}
    nli_source = tmp_path / "nli"
    train_prompt(backbone_dir, world_dir / "nli", TrainConfig(method="spt", **FAST), nli_source)
    random_run = tmp_path / "random"
    train_prompt(backbone_dir, world_dir / "domain", TrainConfig(method="spt", **FAST), random_run)
    result = evaluate_transfer(
        backbone_dir,
        world_dir / "domain",
        [("random", random_run)],
        [("topic", source_dir), ("nli", nli_source)],
        {"topic": {"domain": topic_to_domain}},
        ["en", "far"],
    )
    zero = {run["source"]: run for run in result["runs"] if run["init"] == "zero_shot"}
    assert not zero["nli"]["applicable"]
    assert zero["nli"]["rows"] == []
    # Recompute by hand: the topic prompt's predictions on domain's English test set, mapped.
    model, tokenizer = load_trained(source_dir, backbone_dir)
    frame = load_split(world_dir / "domain", "en", "test")
    preds, _ = predict(model, encode_split(tokenizer, frame, 48), tokenizer.pad_token_id)
    mapped = [[0, 0, 1][p] for p in preds]
    expected = sum(m == g for m, g in zip(mapped, frame["label"])) / len(frame)
    assert zero["topic"]["rows"][0] == {**zero["topic"]["rows"][0], "lang": "en", "accuracy": expected}
    assert zero["topic"]["source_tasks"] == ["topic"]
    assert zero["topic"]["source_language"] == "en"


def test_mapped_scores_take_the_max_of_each_target_labels_sources_and_minus_inf_where_none():
    from xlprompt.analysis.evaluation import mapped_scores

    logits = torch.tensor([[1.0, 2.0, 3.0], [5.0, -1.0, 0.5]])
    # three source labels onto two target labels: target 1 scores max(logit 1, logit 2)
    assert torch.equal(mapped_scores(logits, torch.tensor([0, 1, 1]), 2), torch.tensor([[1.0, 3.0], [5.0, 0.5]]))
    # two source labels onto three target labels: target 1 has no source label
    inf = float("inf")
    assert torch.equal(
        mapped_scores(logits[:, :2], torch.tensor([2, 0]), 3), torch.tensor([[2.0, -inf, 1.0], [-1.0, -inf, 5.0]])
    )


ENTAILMENT_TO_NLI = {"entailment": "entailment", "not_entailment": "contradiction"}  # nli's neutral: no source label
NLI_TO_RTE = {"entailment": "entailment", "neutral": "not_entailment", "contradiction": "not_entailment"}


@pytest.mark.parametrize(
    ("source_task", "target_task", "mapping", "label_map"),
    [
        ("rte", "nli", ENTAILMENT_TO_NLI, [0, 2]),  # 2 labels onto 3
        ("nli", "rte", NLI_TO_RTE, [0, 1, 1]),  # 3 labels onto 2 (the demo's map)
    ],
)
def test_zero_shot_maps_of_any_shape_score_the_mapped_source_predictions(
    world_dir, backbone_dir, tmp_path, source_task, target_task, mapping, label_map
):
    import torch.nn.functional as F

    from xlprompt.analysis.metrics import macro_f1
    from xlprompt.analysis.transfer_metrics import evaluate_transfer
    from xlprompt.data.contract import load_split
    from xlprompt.data.encoding import encode_split

    source = tmp_path / source_task
    train_prompt(backbone_dir, world_dir / source_task, TrainConfig(method="spt", **FAST), source)
    result = evaluate_transfer(
        backbone_dir,
        world_dir / target_task,
        [],
        [(source_task, source)],
        {source_task: {target_task: mapping}},
        ["en"],
    )
    row = result["runs"][0]["rows"][0]
    # By hand: the source prompt's own predictions on the target's test set, through the map.
    model, tokenizer = load_trained(source, backbone_dir)
    frame = load_split(world_dir / target_task, "en", "test")
    data = encode_split(tokenizer, frame, 48)
    logits = [None] * len(data)  # the prompt's scores of its own labels, row by row
    with torch.no_grad():
        for rows, batch in data.inference_batches(128, tokenizer.pad_token_id):
            for r, scores in zip(rows, model.score_batch(batch).tolist()):
                logits[r] = scores
    preds = [max(range(len(scores)), key=scores.__getitem__) for scores in logits]
    gold = list(frame["label"])
    mapped = [label_map[p] for p in preds]
    n_target = len(set(gold))
    assert row["accuracy"] == sum(m == g for m, g in zip(mapped, gold)) / len(gold)
    assert row["macro_f1"] == pytest.approx(macro_f1(gold, mapped, n_target))
    # The loss: softmax over the target labels, each scoring its best source label; examples whose
    # gold label no source label maps to (nli's neutral, above) are left out of it.
    reachable = [g in label_map for g in gold]
    losses = []
    for scores, g, kept in zip(logits, gold, reachable):
        if kept:
            target_scores = [
                max([s for s, t in zip(scores, label_map) if t == label], default=float("-inf"))
                for label in range(n_target)
            ]
            losses.append(F.cross_entropy(torch.tensor([target_scores]), torch.tensor([g])).item())
    assert row["loss_n"] == sum(reachable) == len(losses)
    assert row["n"] == len(gold)
    assert row["loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    if source_task == "rte":
        assert sum(reachable) < len(gold)
        assert 1 not in mapped


def test_zero_shot_label_maps_naming_unknown_labels_fail_before_any_scoring(
    world_dir, backbone_dir, source_dir, tmp_path
):
    from xlprompt.analysis.transfer_metrics import evaluate_transfer

    topic_to_domain = {"sports": "sports+health", "health": "sports+health", "politics": "politics"}
    for mapping, message in [
        ({**topic_to_domain, "sprots": "politics"}, r"unknown topic label\(s\) \['sprots'\]"),
        ({**topic_to_domain, "health": "helth"}, r"unknown domain label\(s\) \['helth'\]"),
    ]:
        with pytest.raises(ValueError, match=r"--label-maps topic.domain: " + message):
            evaluate_transfer(
                backbone_dir, world_dir / "domain", [], [("topic", source_dir)], {"topic": {"domain": mapping}}, ["en"]
            )


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------


def _run(init, source, seed, accuracy):
    return {
        "init": init,
        "source": source,
        "source_tasks": [source] if source != "none" else [],
        "source_language": "en",
        "seed": seed,
        "applicable": True,
        "rows": [{"lang": "en", "accuracy": accuracy, "macro_f1": accuracy}],
    }


def _results(scores: dict[str, list[float]]) -> list[dict]:
    runs = []
    for name, values in scores.items():
        for seed, value in enumerate(values):
            init = name if name in ("random", "label_words") else "transfer"
            runs.append(_run(init, "none" if init != "transfer" else name, seed, value))
    runs.append({**_run("zero_shot", "a", 0, 0), "applicable": False, "rows": []})
    return [{"model": "m", "target": "t", "prompt_length": 4, "runs": runs}]


def test_transfer_table_gain_is_against_random_init_of_the_same_seed():
    table = transfer_table(_results({"random": [0.5, 0.7], "label_words": [0.6, 0.6], "a": [0.9, 0.8]}))
    acc = table[table.metric == "accuracy"].set_index(["init", "source", "seed"])
    assert acc.loc[("transfer", "a", 0), "gain"] == pytest.approx(0.4)
    assert acc.loc[("transfer", "a", 1), "gain"] == pytest.approx(0.1)
    assert acc.loc[("label_words", "none", 1), "gain"] == pytest.approx(-0.1)
    not_applicable = acc.loc[("zero_shot", "a", 0)]
    assert not not_applicable["applicable"]
    assert math.isnan(not_applicable["value"])


def test_retrieval_reports_top1_best_of_top3_and_oracle():
    transfer = transfer_table(_results({"random": [0.5], "a": [0.6], "b": [0.9], "c": [0.7], "d": [0.95]}))
    similarity = pd.DataFrame(
        [
            {
                "source": s,
                "target": "t",
                "prompt_length": 4,
                "metric": "tok_cos",
                "embedding": "snapshot",
                "layers": "prompt",
                "value": v,
            }
            for s, v in {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.1}.items()
        ]
    )
    table = retrieval_table(transfer, similarity)
    row = table[(table.target == "t") & (table.lang == "en")].iloc[0]
    assert (row.top1_source, row.top1, row.best_of_top3, row.oracle_source, row.oracle, row.no_transfer) == (
        "a",
        pytest.approx(0.6),
        pytest.approx(0.9),
        "d",
        pytest.approx(0.95),
        pytest.approx(0.5),
    )


# ---------------------------------------------------------------------------------------
# Cross-model transfer through a projector
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_backbone_dir(world_dir, tmp_path_factory):
    """A second backbone of another width and depth, pretrained on the same world."""
    from dataclasses import replace

    from conftest import TINY_SHAPE

    from xlprompt.models.pretrain import pretrain
    from xlprompt.runtime.settings import MLMSettings

    out = tmp_path_factory.mktemp("models") / "small"
    pretrain(
        world_dir, out, replace(TINY_SHAPE, layers=2, hidden=24, heads=2, ffn=48), MLMSettings(steps=4, batch_size=16)
    )
    return out


def test_projector_has_su_et_al_shape():
    from xlprompt.methods.projector import PromptProjector

    projector = PromptProjector(length=4, source_dim=32, target_dim=24, hidden=10)
    layers = list(projector.net)
    assert [type(layer).__name__ for layer in layers] == ["Linear", "LeakyReLU", "Linear"]
    assert (layers[0].in_features, layers[0].out_features, layers[2].out_features) == (4 * 32, 10, 4 * 24)
    prompt = torch.randn(4, 32)
    assert projector(prompt).shape == (4, 24)
    assert torch.equal(projector(prompt), layers[2](layers[1](layers[0](prompt.reshape(-1)))).view(4, 24))


def test_projector_maps_prompts_into_another_backbone(
    world_dir, backbone_dir, small_backbone_dir, source_dir, tmp_path, monkeypatch
):
    from xlprompt.analysis.prompt_metrics import evaluate
    from xlprompt.methods import projector as projector_module
    from xlprompt.methods.projector import ProjectorConfig, PromptProjector, project_prompt, train_projector
    from xlprompt.models.backbone import load_backbone

    loaded = []  # keep hold of the target backbone that the projector trains through
    monkeypatch.setattr(
        projector_module, "load_backbone", lambda *args: loaded.append(load_backbone(*args)) or loaded[-1]
    )
    out = tmp_path / "projector"
    train_projector(
        source_dir,
        small_backbone_dir,
        [world_dir / "topic"],
        ProjectorConfig(hidden=16, steps=4, batch_size=8, eval_every=2, max_length=48),
        out,
    )
    before = load_file(small_backbone_dir / "model.safetensors")
    after = loaded[0][0].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the target backbone stays frozen"
    projected = load_file(out / "prompt.safetensors")["prompt"]
    assert projected.shape == (4, 24)
    # The projected training prompt is the projector applied to the (frozen) source prompt.
    projector = PromptProjector(4, 32, 24, 16)
    projector.load_state_dict(load_file(out / "projector.safetensors"))
    with torch.no_grad():
        assert torch.allclose(projector(load_file(source_dir / "prompt.safetensors")["prompt"]), projected)
    # Zero-shot on the target backbone: a prompt artifact like any other.
    metrics = evaluate(out, small_backbone_dir, world_dir / "topic", ["en"])
    assert metrics["rows"][0]["n"] == 18
    assert 0 <= metrics["rows"][0]["accuracy"] <= 1
    # Another prompt of the source backbone (a domain prompt) maps through the same projector,
    # and starts prompt tuning on the target backbone.
    domain_a = tmp_path / "domain-a"
    train_prompt(backbone_dir, world_dir / "domain", TrainConfig(method="spt", **FAST), domain_a)
    project_prompt(out, domain_a, small_backbone_dir, tmp_path / "domain-b")
    with torch.no_grad():
        expected = projector(load_file(domain_a / "prompt.safetensors")["prompt"])
    assert torch.allclose(load_file(tmp_path / "domain-b" / "prompt.safetensors")["prompt"], expected)
    train_prompt(
        small_backbone_dir,
        world_dir / "domain",
        TrainConfig(method="spt", init="source", **FAST),
        tmp_path / "domain-tuned",
        source=tmp_path / "domain-b",
    )
    assert torch.allclose(load_file(tmp_path / "domain-tuned" / "prompt.safetensors")["prompt_init"], expected)
    # A prompt of the target backbone is not something this projector maps.
    with pytest.raises(ValueError, match="trained on another backbone than the one"):
        project_prompt(out, tmp_path / "domain-tuned", small_backbone_dir, tmp_path / "wrong")
    # Nor does a source prompt start tuning on another backbone without a projector.
    with pytest.raises(ValueError, match="trained on another backbone"):
        train_prompt(
            small_backbone_dir,
            world_dir / "domain",
            TrainConfig(method="spt", init="source", **FAST),
            tmp_path / "no-projector",
            source=domain_a,
        )
