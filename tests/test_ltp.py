"""Winning-ticket selection against hand-built state dicts."""

import pytest
import torch

from xlprompt.ltp import TicketConfig, maskable_names, select_ticket, ticket_share, top_k_mask

P = "roberta.encoder.layer"


def state(values: dict[str, list[float]]) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(v) for name, v in values.items()}


THETA0 = state({
    "roberta.embeddings.word_embeddings.weight": [0.0, 0.0],
    f"{P}.0.attention.self.query.weight": [0.0, 0.0, 0.0],
    f"{P}.0.attention.output.LayerNorm.weight": [0.0, 0.0],
    f"{P}.0.intermediate.dense.weight": [0.0, 0.0, 0.0],
    f"{P}.1.attention.self.query.weight": [0.0, 0.0, 0.0],
    f"{P}.1.output.dense.bias": [0.0],
    "lm_head.dense.weight": [0.0, 0.0],
})
THETA_MLM = state({
    "roberta.embeddings.word_embeddings.weight": [9.0, 9.0],  # large but never maskable
    f"{P}.0.attention.self.query.weight": [0.5, -0.1, 0.0],
    f"{P}.0.attention.output.LayerNorm.weight": [9.0, 9.0],
    f"{P}.0.intermediate.dense.weight": [0.2, 0.2, -0.3],
    f"{P}.1.attention.self.query.weight": [0.05, 0.01, 0.02],
    f"{P}.1.output.dense.bias": [-0.4],
    "lm_head.dense.weight": [9.0, 9.0],
})


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
        f"{P}.1.attention.self.query.weight", f"{P}.1.output.dense.bias"]
    assert list(maskable_names(shapes, TicketConfig(ffn=False, biases=False))) == [
        f"{P}.0.attention.self.query.weight", f"{P}.1.attention.self.query.weight"]


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
    assert table["entries"].sum() == 10 and table["selected"].sum() == 4
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

    from xlprompt import train as train_module
    from xlprompt.train import TrainConfig, load_backbone, load_trained, train_prompt

    loaded = []
    monkeypatch.setattr(train_module, "load_backbone", lambda path: loaded.append(load_backbone(path)) or loaded[-1])
    cfg = TrainConfig(method="ltp", prompt_length=4, steps=10, batch_size=8, eval_every=5, max_length=48,
                      backbone_lr=1e-2)
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


def test_ltp_without_a_ticket_is_a_clear_error(world_dir, backbone_dir, tmp_path):
    from xlprompt.train import TrainConfig, train_prompt

    with pytest.raises(ValueError, match="method ltp needs a ticket"):
        train_prompt(backbone_dir, world_dir / "topic", TrainConfig(method="ltp", prompt_length=4, steps=2, max_length=48),
                     tmp_path / "x")


def test_select_ticket_stage_writes_mask_table_figure_and_what_p_means(ticket_path):
    import json

    import pandas as pd

    folder = ticket_path.parent
    summary = json.loads((folder / "ticket.json").read_text())
    assert abs(summary["share_of_maskable"] - 0.2) < 0.001
    assert summary["share_of_all_parameters"] < summary["share_of_maskable"]  # embeddings etc. are not maskable
    assert "maskable entries" in summary["what_p_is_a_share_of"]
    table = pd.read_csv(folder / "ticket_share.csv")
    assert set(table["module"]) == {"attention", "ffn"} and table["selected"].sum() == summary["selected_entries"]
    assert (folder / "ticket_share.png").read_bytes()[:4] == b"\x89PNG"


def test_finetune_mlm_is_deterministic(world_dir, backbone_dir, tmp_path):
    from xlprompt.stages import finetune_mlm

    outputs = []
    for run in ("a", "b"):
        finetune_mlm.main(["--backbone", str(backbone_dir), "--text", str(world_dir / "corpus" / "en.txt"),
                           "--out", str(tmp_path / run), "--steps", "3", "--batch-size", "8", "--lr", "1e-3"])
        outputs.append((tmp_path / run / "model.safetensors").read_bytes())
    assert outputs[0] == outputs[1]
