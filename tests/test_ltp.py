"""Winning-ticket selection against hand-built state dicts, and LTP (fine-tuning, ticket, training) on every family."""

from pathlib import Path

import pytest
import torch
from tiny_models import LLM_FAMILY

from xlprompt.methods.ltp import (
    TicketConfig,
    maskable_names,
    select_ticket,
    ticket_share,
    top_k_mask,
    without_tied_copies,
)

P = "roberta.encoder.layer"


def state(values: dict[str, list[float]]) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(v) for name, v in values.items()}


THETA0 = state(
    {
        "roberta.embeddings.word_embeddings.weight": [0.0, 0.0],
        f"{P}.0.attention.self.query.weight": [0.0, 0.0, 0.0],
        f"{P}.0.attention.output.LayerNorm.weight": [0.0, 0.0],
        f"{P}.0.intermediate.dense.weight": [0.0, 0.0, 0.0],
        f"{P}.1.attention.self.query.weight": [0.0, 0.0, 0.0],
        f"{P}.1.output.dense.bias": [0.0],
        "lm_head.dense.weight": [0.0, 0.0],
    }
)
THETA_MLM = state(
    {
        "roberta.embeddings.word_embeddings.weight": [9.0, 9.0],  # large but never maskable
        f"{P}.0.attention.self.query.weight": [0.5, -0.1, 0.0],
        f"{P}.0.attention.output.LayerNorm.weight": [9.0, 9.0],
        f"{P}.0.intermediate.dense.weight": [0.2, 0.2, -0.3],
        f"{P}.1.attention.self.query.weight": [0.05, 0.01, 0.02],
        f"{P}.1.output.dense.bias": [-0.4],
        "lm_head.dense.weight": [9.0, 9.0],
    }
)


def as_lists(masks):
    return {name.replace(P, "L"): mask.int().tolist() for name, mask in masks.items()}


def test_global_ticket_is_exactly_the_largest_deltas():
    # 10 maskable entries, p = 0.4 -> the 4 largest |delta|: 0.5, 0.4, 0.3 and one of the two 0.2s
    # (the earlier one: ties go to earlier parameters and positions).
    masks = select_ticket(THETA0, THETA_MLM, TicketConfig(sparsity=0.4))
    assert as_lists(masks) == {
        "L.0.attention.self.query.weight": [1, 0, 0],
        "L.0.intermediate.dense.weight": [1, 0, 1],
        "L.1.attention.self.query.weight": [0, 0, 0],
        "L.1.output.dense.bias": [1],
    }


def test_per_layer_ticket_takes_the_top_share_of_each_layer():
    # layer 0: 6 entries -> 2 (0.5, 0.3); layer 1: 4 entries -> 2 (0.4, 0.05)
    masks = select_ticket(THETA0, THETA_MLM, TicketConfig(sparsity=0.4, scope="per_layer"))
    assert as_lists(masks) == {
        "L.0.attention.self.query.weight": [1, 0, 0],
        "L.0.intermediate.dense.weight": [0, 0, 1],
        "L.1.attention.self.query.weight": [1, 0, 0],
        "L.1.output.dense.bias": [1],
    }


def test_layer_range_and_groups_restrict_what_is_maskable():
    shapes = {n: t.shape for n, t in THETA0.items()}
    assert list(maskable_names(shapes, TicketConfig(first_layer=1))) == [
        f"{P}.1.attention.self.query.weight",
        f"{P}.1.output.dense.bias",
    ]
    assert list(maskable_names(shapes, TicketConfig(ffn=False, biases=False))) == [
        f"{P}.0.attention.self.query.weight",
        f"{P}.1.attention.self.query.weight",
    ]


def test_excluded_groups_are_options():
    shapes = {n: t.shape for n, t in THETA0.items()}
    default = maskable_names(shapes, TicketConfig())
    assert not any("embeddings" in n or "LayerNorm" in n or n.startswith("lm_head") for n in default)
    everything = maskable_names(shapes, TicketConfig(embeddings=True, layer_norm=True, lm_head=True))
    assert set(everything) == set(shapes)
    assert everything["roberta.embeddings.word_embeddings.weight"] == (-1, "embeddings")
    assert everything["lm_head.dense.weight"] == (2, "lm_head")


def test_ties_are_broken_by_position_deterministically():
    assert top_k_mask(torch.tensor([1.0, 2.0, 2.0, 2.0, 0.5]), 2).tolist() == [False, True, True, False, False]
    assert top_k_mask(torch.zeros(4), 3).tolist() == [True, True, True, False]


def test_share_table_counts_every_maskable_entry():
    masks = select_ticket(THETA0, THETA_MLM, TicketConfig(sparsity=0.4))
    table = ticket_share(masks)
    assert table["entries"].sum() == 10
    assert table["selected"].sum() == 4
    assert table.set_index(["layer", "module"]).loc[(0, "ffn"), "selected"] == 2


@pytest.mark.parametrize("sparsity", [0.05, 0.1, 0.2, 0.4])
def test_share_equals_sparsity_within_a_tenth_of_a_point(sparsity):
    generator = torch.Generator().manual_seed(0)
    theta0 = {f"{P}.{i}.attention.self.query.weight": torch.randn(37, 53, generator=generator) for i in range(3)}
    theta1 = {n: t + torch.randn(t.shape, generator=generator) for n, t in theta0.items()}
    masks = select_ticket(theta0, theta1, TicketConfig(sparsity=sparsity))
    total = sum(m.numel() for m in masks.values())
    assert abs(sum(int(m.sum()) for m in masks.values()) / total - sparsity) < 0.001


def test_bad_sparsity_is_rejected():
    with pytest.raises(ValueError, match=r"sparsity must be in \(0, 1\], got 0"):
        TicketConfig(sparsity=0)


def test_ltp_changes_only_ticket_entries(world_dir, backbone_dir, ticket_path, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from xlprompt.methods import training as train_module
    from xlprompt.methods.artifacts import load_trained
    from xlprompt.methods.training import train_prompt
    from xlprompt.models.backbone import load_backbone
    from xlprompt.runtime.settings import TrainConfig

    loaded = []
    monkeypatch.setattr(train_module, "load_backbone", lambda *args: loaded.append(load_backbone(*args)) or loaded[-1])
    cfg = TrainConfig(
        method="ltp", prompt_length=4, steps=10, batch_size=8, eval_every=5, max_length=48, backbone_lr=1e-2
    )
    train_prompt(backbone_dir, world_dir / "topic", cfg, tmp_path / "ltp", ticket=ticket_path)
    theta0, masks = load_file(backbone_dir / "model.safetensors"), load_file(ticket_path)
    trained = loaded[0][0].state_dict()
    changed_in_ticket = ticket_entries = 0
    for name, before in theta0.items():
        after = trained[name]
        mask = masks.get(name, torch.zeros_like(before, dtype=torch.bool))
        # outside the ticket: bit for bit theta_0 (embeddings, LayerNorms, LM head included)
        assert torch.equal(after[~mask], before[~mask]), name
        changed_in_ticket += int((after[mask] != before[mask]).sum())
        ticket_entries += int(mask.sum())
    assert changed_in_ticket > 0.5 * ticket_entries

    # The artifact holds only the ticket's entries and rebuilds exactly the trained weights.
    tensors = load_file(tmp_path / "ltp" / "prompt.safetensors")
    assert sum(t.numel() for k, t in tensors.items() if k.endswith(".value")) == ticket_entries
    rebuilt = load_trained(tmp_path / "ltp", backbone_dir)[0].backbone.state_dict()
    assert all(torch.equal(rebuilt[name], trained[name]) for name in theta0)
    meta = __import__("json").loads((tmp_path / "ltp" / "meta.json").read_text())
    assert meta["inputs_sha256"]["ticket"]
    assert meta["artifact_bytes"] < meta["full_checkpoint_bytes"]


def test_a_second_copy_of_a_tied_matrix_in_theta0_is_one_candidate_not_a_missing_one():
    theta0 = {**THETA0, "lm_head.decoder.weight": THETA0["roberta.embeddings.word_embeddings.weight"].clone()}
    kept = without_tied_copies(theta0, THETA_MLM)
    assert list(kept) == list(THETA0)
    # A name theta_MLM lacks that copies nothing is still reported missing.
    theta0["lm_head.decoder.weight"] = torch.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match=r"lm_head\.decoder\.weight is missing from the fine-tuned model"):
        select_ticket(without_tied_copies(theta0, THETA_MLM), THETA_MLM, TicketConfig(lm_head=True))


def test_a_ticket_over_every_parameter_trains_xlmrs_tied_embeddings_at_its_entries_only(
    world_dir, backbone_dir, ticket_path, tmp_path, monkeypatch
):
    """The paper's "20% of the original parameters": embeddings, LayerNorms and LM head are candidates.

    XLM-R ties its word embeddings to the LM head's decoder; named_parameters() lists that matrix
    as lm_head.decoder.weight, the checkpoint (and the ticket) as roberta.embeddings.word_embeddings.
    """
    from safetensors.torch import load_file

    from xlprompt.methods import training as train_module
    from xlprompt.methods.artifacts import load_trained
    from xlprompt.methods.training import train_prompt
    from xlprompt.models.backbone import load_backbone
    from xlprompt.runtime.settings import TrainConfig
    from xlprompt.stages import select_ticket as select_stage

    words = "roberta.embeddings.word_embeddings.weight"
    every_group = ["--sparsity", "0.2", "--embeddings", "--layer-norm", "--lm-head"]
    finetuned = ticket_path.parent.parent / "mlm"
    select_stage.main(
        [
            "--backbone",
            str(backbone_dir),
            "--finetuned",
            str(finetuned),
            "--out",
            str(tmp_path / "ticket"),
            *every_group,
        ]
    )
    masks = load_file(tmp_path / "ticket" / "mask.safetensors")
    theta0 = load_file(backbone_dir / "model.safetensors")
    assert set(masks) == set(theta0)
    assert masks[words].any()

    loaded = []
    monkeypatch.setattr(train_module, "load_backbone", lambda *args: loaded.append(load_backbone(*args)) or loaded[-1])
    cfg = TrainConfig(
        method="ltp", prompt_length=4, steps=6, batch_size=8, eval_every=3, max_length=48, backbone_lr=1e-2
    )
    train_prompt(
        backbone_dir, world_dir / "topic", cfg, tmp_path / "ltp", ticket=tmp_path / "ticket" / "mask.safetensors"
    )
    model = loaded[0][0]
    assert model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight  # still tied
    trained = model.state_dict()
    for name, before in theta0.items():
        assert torch.equal(trained[name][~masks[name]], before[~masks[name]]), name
    assert (trained[words][masks[words]] != theta0[words][masks[words]]).any()
    rebuilt = load_trained(tmp_path / "ltp", backbone_dir)[0].backbone.state_dict()
    assert all(torch.equal(rebuilt[name], trained[name]) for name in theta0)


def test_two_masks_on_one_tied_matrix_load_as_their_union(backbone_dir, tmp_path):
    from safetensors.torch import save_file

    from xlprompt.methods.ltp import load_ticket
    from xlprompt.models.backbone import load_backbone

    backbone = load_backbone(backbone_dir)[0]
    shape = backbone.roberta.embeddings.word_embeddings.weight.shape
    first, second = torch.zeros(shape, dtype=torch.bool), torch.zeros(shape, dtype=torch.bool)
    first[0, 0], second[1, 1] = True, True
    save_file({"roberta.embeddings.word_embeddings.weight": first, "lm_head.decoder.weight": second}, tmp_path / "m")
    masks = load_ticket(tmp_path / "m", backbone)
    (mask,) = masks.values()  # one mask, one gradient hook, on the one matrix
    assert mask.nonzero().tolist() == [[0, 0], [1, 1]]


def test_ltp_without_a_ticket_is_a_clear_error(world_dir, backbone_dir, tmp_path):
    from xlprompt.methods.training import train_prompt
    from xlprompt.runtime.settings import TrainConfig

    with pytest.raises(ValueError, match="method ltp needs a ticket"):
        train_prompt(
            backbone_dir,
            world_dir / "topic",
            TrainConfig(method="ltp", prompt_length=4, steps=2, max_length=48),
            tmp_path / "x",
        )


def test_select_ticket_stage_writes_mask_table_figure_and_what_p_means(ticket_path):
    import json

    import pandas as pd

    folder = ticket_path.parent
    summary = json.loads((folder / "ticket.json").read_text())
    assert abs(summary["share_of_maskable"] - 0.2) < 0.001
    assert summary["share_of_all_parameters"] < summary["share_of_maskable"]  # embeddings etc. are not maskable
    assert "maskable entries" in summary["what_p_is_a_share_of"]
    table = pd.read_csv(folder / "ticket_share.csv")
    assert set(table["module"]) == {"attention", "ffn"}
    assert table["selected"].sum() == summary["selected_entries"]
    assert (folder / "ticket_share.png").read_bytes()[:4] == b"\x89PNG"


def test_finetune_mlm_is_deterministic(world_dir, backbone_dir, tmp_path):
    from xlprompt.stages import finetune_mlm

    outputs = []
    for run in ("a", "b"):
        finetune_mlm.main(
            [
                "--backbone",
                str(backbone_dir),
                "--text",
                str(world_dir / "corpus" / "en.txt"),
                "--out",
                str(tmp_path / run),
                "--steps",
                "3",
                "--batch-size",
                "8",
                "--lr",
                "1e-3",
            ]
        )
        outputs.append((tmp_path / run / "model.safetensors").read_bytes())
    assert outputs[0] == outputs[1]


# --- every family: ticket selection over its own weights, its own fine-tuning objective -----------

LAYERS = {
    "xlm-roberta": {"num_hidden_layers": 2},
    "bert": {"num_hidden_layers": 2},
    "xglm": {"num_layers": 2},
    "bloom": {"n_layer": 2},
    "mt5": {"num_layers": 2, "num_decoder_layers": 2},
    **{kind: {"num_hidden_layers": 2} for kind in LLM_FAMILY},  # as built
}
OBJECTIVE = {
    "xlm-roberta": "masked_lm",
    "bert": "masked_lm",
    "xglm": "causal_lm",
    "bloom": "causal_lm",
    "mt5": "span_corruption",
    **dict.fromkeys(LLM_FAMILY, "causal_lm"),
}


def expected_maskable(kind: str) -> dict[str, int]:
    """Each family's attention and FFN weights (and biases) per layer, written out from its architecture;
    mT5's decoder blocks are layers 2 and 3, after the encoder's 0 and 1."""

    def weights_and_biases(prefix, modules):
        return [f"{prefix}{m}.{w}" for m in modules for w in ("weight", "bias")]

    out = {}
    for i in range(2):
        if kind in ("xlm-roberta", "bert"):
            prefix = f"{'roberta' if kind == 'xlm-roberta' else 'bert'}.encoder.layer.{i}."
            names = weights_and_biases(
                prefix,
                [
                    "attention.self.query",
                    "attention.self.key",
                    "attention.self.value",
                    "attention.output.dense",
                    "intermediate.dense",
                    "output.dense",
                ],
            )
        elif kind == "xglm":
            names = weights_and_biases(
                f"model.layers.{i}.",
                ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "fc1", "fc2"],
            )
        elif kind in LLM_FAMILY:  # Qwen2 alone has biases, in q, k and v
            attention = [f"self_attn.{m}_proj" for m in "qkvo"]
            names = [
                f"model.layers.{i}.{m}.weight" for m in attention + [f"mlp.{m}_proj" for m in ("gate", "up", "down")]
            ]
            if kind == "qwen2":
                names += [f"model.layers.{i}.self_attn.{m}_proj.bias" for m in "qkv"]
        elif kind == "bloom":
            names = weights_and_biases(
                f"transformer.h.{i}.",
                ["self_attention.query_key_value", "self_attention.dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h"],
            )
        else:  # mT5 has no biases
            ffn = [f"DenseReluDense.{m}.weight" for m in ("wi_0", "wi_1", "wo")]
            encoder = [f"encoder.block.{i}.layer.0.SelfAttention.{m}.weight" for m in "qkvo"]
            encoder += [f"encoder.block.{i}.layer.1.{w}" for w in ffn]
            decoder = [f"decoder.block.{i}.layer.0.SelfAttention.{m}.weight" for m in "qkvo"]
            decoder += [f"decoder.block.{i}.layer.1.EncDecAttention.{m}.weight" for m in "qkvo"]
            decoder += [f"decoder.block.{i}.layer.2.{w}" for w in ffn]
            out.update(dict.fromkeys(decoder, 2 + i))
            names = encoder
        out.update(dict.fromkeys(names, i))
    return out


@pytest.fixture(scope="module")
def two_layer(stand_ins, tmp_path_factory) -> dict[str, Path]:
    """Each stand-in rebuilt with two layers (mT5: two encoder and two decoder blocks), with its own tokenizer."""
    import shutil

    from transformers import AutoConfig

    from xlprompt.models.families import auto_class, family_of

    root = tmp_path_factory.mktemp("two-layer")
    out = {}
    for kind, folder in stand_ins.items():
        config = AutoConfig.from_pretrained(folder)
        for key, value in LAYERS[kind].items():
            setattr(config, key, value)
        torch.manual_seed(0)
        shutil.copytree(folder, root / kind)
        auto_class(family_of(config)).from_config(config).save_pretrained(root / kind)
        out[kind] = root / kind
    return out


def shapes_of(folder: Path) -> dict[str, torch.Size]:
    from safetensors.torch import load_file

    return {name: tensor.shape for name, tensor in load_file(folder / "model.safetensors").items()}


@pytest.mark.parametrize("kind", list(LAYERS))
def test_maskable_weights_are_each_familys_attention_and_ffn_in_the_right_layers(kind, two_layer):
    from xlprompt.methods.ltp import layer_numbers, module_kind

    shapes = shapes_of(two_layer[kind])
    expected = expected_maskable(kind)
    assert {n: layer for n, (layer, _) in maskable_names(shapes, TicketConfig()).items()} == expected
    n_layers = len(set(expected.values()))
    for layer in range(n_layers):  # a one-layer range selects exactly that layer's weights
        chosen = maskable_names(shapes, TicketConfig(first_layer=layer, last_layer=layer))
        assert set(chosen) == {n for n, at in expected.items() if at == layer}, layer
    # Nothing inside a layer falls outside the groups (it would be silently never maskable).
    numbers = layer_numbers(shapes)
    assert {module_kind(n) for n in numbers} <= {"attention", "ffn", "layer_norm", "embeddings"}
    assert all(module_kind(n) == "embeddings" for n in numbers if "relative_attention_bias" in n)  # mT5's positions
    # Embeddings, LayerNorms and LM head are options, excluded by default, as for XLM-R.
    everything = maskable_names(shapes, TicketConfig(embeddings=True, layer_norm=True, lm_head=True))
    assert {module_kind(n) for n in set(everything) - set(expected)} == {"embeddings", "layer_norm"} | (
        {"lm_head"} if kind in ("xlm-roberta", "bert", "mistral") else set()  # Mistral's LM head is untied
    )
    with pytest.raises(ValueError, match=rf"layer range 0..{n_layers} is outside the backbone's {n_layers} layers"):
        maskable_names(shapes, TicketConfig(last_layer=n_layers))


def test_span_corruption_replaces_each_span_by_one_sentinel():
    from xlprompt.models.mlm import random_spans_noise_mask, span_corrupt

    tokens = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 1]  # 12 tokens and </s> (id 1)
    sentinels = [99, 98, 97]
    inputs, targets = span_corrupt(tokens, 0.25, 1.5, sentinels, 1, torch.Generator().manual_seed(0))
    noise = random_spans_noise_mask(12, 0.25, 1.5, 3, torch.Generator().manual_seed(0))  # the same draws
    assert sum(noise) == 3
    assert not noise[0]
    starts = [i for i, n in enumerate(noise) if n and not noise[i - 1]]
    assert len(starts) == 2  # round(3 / 1.5) spans
    # Written out: the input keeps the other tokens with one sentinel per span; the target is each
    # sentinel followed by its span; both end in </s>.
    expected_inputs, expected_targets = [], []
    for i, (token, n) in enumerate(zip(tokens[:-1], noise)):
        if i in starts:
            expected_inputs.append(sentinels[starts.index(i)])
            expected_targets.append(sentinels[starts.index(i)])
        (expected_targets if n else expected_inputs).append(token)
    assert inputs == [*expected_inputs, 1]
    assert targets == [*expected_targets, 1]
    assert random_spans_noise_mask(1, 0.15, 3.0, 10, torch.Generator()) == [True]  # a one-token text is one span
    # Never more spans than sentinels.
    many = random_spans_noise_mask(60, 0.5, 1.0, 2, torch.Generator())
    assert sum(1 for i, n in enumerate(many) if n and not many[i - 1]) == 2


@pytest.mark.parametrize("kind", ["xglm", "bloom", "mt5"])
def test_causal_and_span_losses_equal_the_models_own_loss(kind, stand_ins):
    from xlprompt.data.encoding import pad_batch
    from xlprompt.models.backbone import load_backbone
    from xlprompt.models.mlm import causal_lm_loss, seq2seq_loss

    model, tokenizer = load_backbone(stand_ins[kind])
    model.eval()
    docs = tokenizer(["the deke resa mole", "a resa"])["input_ids"]
    ids, attention = pad_batch(docs, tokenizer.pad_token_id)
    with torch.no_grad():
        if kind == "mt5":
            labels, real = pad_batch([[5, 6, 7, 1], [8, 1]], tokenizer.pad_token_id)
            labels = labels.masked_fill(real == 0, -100)
            ours = seq2seq_loss(model, ids, attention, labels)
            theirs = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        else:
            ours = causal_lm_loss(model, ids, attention)
            theirs = model(input_ids=ids, attention_mask=attention, labels=ids.masked_fill(attention == 0, -100)).loss
    torch.testing.assert_close(ours, theirs)


def finetune(folder: Path, world_dir: Path, out: Path, *extra: str) -> None:
    from xlprompt.stages import finetune_mlm

    finetune_mlm.main(
        [
            "--backbone",
            str(folder),
            "--text",
            str(world_dir / "corpus" / "en.txt"),
            "--out",
            str(out),
            "--steps",
            "4",
            "--batch-size",
            "8",
            "--lr",
            "1e-3",
            "--checkpoint-every",
            "2",
            *extra,
        ]
    )


@pytest.mark.parametrize("kind", list(LAYERS))
def test_finetuning_resumes_to_the_same_bytes_on_every_family(kind, stand_ins, world_dir, tmp_path, monkeypatch):
    """Killed after its step-2 checkpoint, fine-tuning resumes there and ends as a run that never stopped."""
    from xlprompt.models import mlm

    finetune(stand_ins[kind], world_dir, tmp_path / "once")
    real = mlm.linear_schedule

    def stop_at_step_3(step, *args):
        if step == 3:
            raise KeyboardInterrupt("killed")
        return real(step, *args)

    monkeypatch.setattr(mlm, "linear_schedule", stop_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        finetune(stand_ins[kind], world_dir, tmp_path / "resumed", "--checkpoint-dir", str(tmp_path / "ck"))
    assert (tmp_path / "ck" / "latest.json").exists()
    assert not (tmp_path / "resumed").exists()
    monkeypatch.setattr(mlm, "linear_schedule", real)
    restored = []
    load = mlm.load_checkpoint
    monkeypatch.setattr(mlm, "load_checkpoint", lambda *a: restored.append(load(*a)) or restored[-1])
    finetune(stand_ins[kind], world_dir, tmp_path / "resumed", "--checkpoint-dir", str(tmp_path / "ck"))
    assert restored[0][1]["step"] == 2  # resumed, not started over
    assert not (tmp_path / "ck").exists()
    for name in ("model.safetensors", "finetune_log.jsonl"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "once" / name).read_bytes(), name
    import json

    assert json.loads((tmp_path / "once" / "meta.json").read_text())["config"]["objective"] == OBJECTIVE[kind]


@pytest.mark.parametrize("kind", ["xglm", "bloom", "mt5"])
def test_each_objective_lowers_its_loss(kind, stand_ins):
    from transformers import AutoTokenizer

    from xlprompt.models.backbone import load_backbone
    from xlprompt.models.mlm import train_lm
    from xlprompt.runtime.settings import MLMSettings

    model, tokenizer = load_backbone(stand_ins[kind])
    corpus = tokenizer(["the deke resa mole a resa", "a mole the deke", "resa the a deke mole"])["input_ids"]
    torch.manual_seed(0)
    log = train_lm(
        model,
        AutoTokenizer.from_pretrained(stand_ins[kind]),
        corpus,
        MLMSettings(steps=30, batch_size=6, lr=1e-2),
        OBJECTIVE[kind],
    )
    assert log[-1]["loss"] < 0.8 * log[0]["loss"], log


TICKET_RANGE = {"mt5": (1, 2)}  # mT5: encoder block 1 and decoder block 0, a middle band across both


@pytest.mark.parametrize("kind", list(LAYERS))
def test_ltp_runs_on_every_family_and_changes_only_ticket_entries(kind, two_layer, world_dir, tmp_path, monkeypatch):
    import json

    import pandas as pd
    from conftest import single_token_words, with_label_words
    from safetensors.torch import load_file
    from tiny_models import ALL

    from xlprompt.data.contract import load_labels, load_split
    from xlprompt.data.encoding import encode_split
    from xlprompt.methods import training as train_module
    from xlprompt.methods.artifacts import load_trained
    from xlprompt.methods.training import train_prompt
    from xlprompt.models.backbone import load_backbone, load_tokenizer
    from xlprompt.models.predict import evaluate_split, predict
    from xlprompt.runtime.io import sha256_file
    from xlprompt.runtime.settings import TrainConfig
    from xlprompt.stages import select_ticket as select_stage

    folder, family = two_layer[kind], ALL[kind]
    before = {p.name: sha256_file(p) for p in folder.iterdir() if p.is_file()}
    theta0 = load_file(folder / "model.safetensors")
    # 1. Fine-tuning with the family's objective: every weight trains, names and shapes stay.
    finetune(folder, world_dir, tmp_path / "ft")
    tuned = load_file(tmp_path / "ft" / "model.safetensors")
    assert {n: (t.shape, t.dtype) for n, t in tuned.items()} == {n: (t.shape, t.dtype) for n, t in theta0.items()}
    assert all(not torch.equal(tuned[n], theta0[n]) for n in expected_maskable(kind))
    assert {p.name: sha256_file(p) for p in folder.iterdir() if p.is_file()} == before  # theta_0 untouched

    # 2. The ticket: exactly the requested share of the maskable entries of the chosen layers.
    first, last = TICKET_RANGE.get(kind, (1, 1))
    select_stage.main(
        [
            "--backbone",
            str(folder),
            "--finetuned",
            str(tmp_path / "ft"),
            "--out",
            str(tmp_path / "t"),
            "--sparsity",
            "0.25",
            "--first-layer",
            str(first),
            "--last-layer",
            str(last),
        ]
    )
    masks = load_file(tmp_path / "t" / "mask.safetensors")
    in_range = {n for n, at in expected_maskable(kind).items() if first <= at <= last}
    assert set(masks) == in_range
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == round(0.25 * total)
    summary = json.loads((tmp_path / "t" / "ticket.json").read_text())
    assert summary["maskable_entries"] == total
    assert summary["share_of_maskable"] == round(0.25 * total) / total
    table = pd.read_csv(tmp_path / "t" / "ticket_share.csv")
    assert set(table["layer"]) == set(range(first, last + 1))
    if kind == "mt5":
        assert "decoder blocks 0..1 are layers 2..3" in summary["layers"]

    # 3. LTP training from theta_0: the ticket's entries train, every other entry stays bit-identical.
    tokenizer = load_tokenizer(folder)
    n_labels = len(load_labels(world_dir / "topic").names)
    data = with_label_words(
        world_dir / "topic", tmp_path / "topic", single_token_words(tokenizer, world_dir, family, n_labels)
    )
    loaded = []
    monkeypatch.setattr(train_module, "load_backbone", lambda *args: loaded.append(load_backbone(*args)) or loaded[-1])
    cfg = TrainConfig(
        method="ltp", prompt_length=4, steps=6, batch_size=8, eval_every=3, max_length=48, backbone_lr=1e-2
    )
    summary = train_prompt(folder, data, cfg, tmp_path / "ltp", ticket=tmp_path / "t" / "mask.safetensors")
    trained = loaded[0][0].state_dict()
    changed = 0
    for name, original in theta0.items():
        mask = masks.get(name, torch.zeros_like(original, dtype=torch.bool))
        assert torch.equal(trained[name][~mask], original[~mask]), name
        changed += int((trained[name][mask] != original[mask]).sum())
    assert changed > 0.5 * sum(int(m.sum()) for m in masks.values())

    # 4. The artifact rebuilds the trained weights bit for bit, and the reload predicts identically.
    model, _ = load_trained(tmp_path / "ltp", folder)
    rebuilt = model.backbone.state_dict()
    assert all(torch.equal(rebuilt[name], trained[name]) for name in theta0)
    dev = encode_split(tokenizer, load_split(data, "en", "validation"), 48, family)
    assert evaluate_split(model, dev, tokenizer.pad_token_id)[0] == pytest.approx(summary["best_dev_loss"], abs=1e-4)
    test = encode_split(tokenizer, load_split(data, "en", "test"), 48, family)
    again = load_trained(tmp_path / "ltp", folder)[0]
    assert predict(model, test, tokenizer.pad_token_id)[0] == predict(again, test, tokenizer.pad_token_id)[0]
