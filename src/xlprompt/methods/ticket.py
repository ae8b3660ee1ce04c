"""LTP steps 2-3 written out: the winning ticket's mask, its share per layer (table and figure) and what p means."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from types import SimpleNamespace

from safetensors.torch import save_file

from xlprompt.methods.ltp import (
    TicketConfig,
    layer_layout,
    maskable_names,
    select_ticket,
    ticket_share,
    without_tied_copies,
)
from xlprompt.models.families import family_of
from xlprompt.models.weights import load_weights, weights_sha256
from xlprompt.runtime.io import atomic_dir, read_json, write_json
from xlprompt.runtime.meta import run_metadata

logger = logging.getLogger(__name__)


def plot_share(table, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(max(4, 0.6 * table["layer"].nunique() + 2), 3))
    sns.barplot(data=table, x="layer", y="share", hue="module", ax=ax)
    ax.set_ylabel("share of entries in the ticket")
    ax.set_title("winning ticket per layer and module")
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def what_p_means(cfg: TicketConfig) -> str:
    groups = [g for g in ("attention", "ffn", "layer_norm") if getattr(cfg, g)]
    text = f"the maskable entries: {', '.join(groups)} weights" + (" and biases" if cfg.biases else "")
    text += f" of layers {cfg.first_layer}..{'last' if cfg.last_layer < 0 else cfg.last_layer}"
    extra = [g for g in ("embeddings", "lm_head") if getattr(cfg, g)]
    return text + (f", plus {' and '.join(extra)}" if extra else "")


def write_ticket(backbone: Path, finetuned: Path, out: Path, cfg: TicketConfig) -> dict:
    family_of(SimpleNamespace(**read_json(backbone / "config.json")))  # an architecture xlprompt knows, or its name
    theta0, theta_mlm = load_weights(backbone), load_weights(finetuned)
    theta0 = without_tied_copies(theta0, theta_mlm)
    masks = select_ticket(theta0, theta_mlm, cfg)
    shapes = {name: tensor.shape for name, tensor in theta0.items()}
    table = ticket_share(masks, maskable_names(shapes, cfg))
    maskable, selected = int(table["entries"].sum()), int(table["selected"].sum())
    inputs = {
        "backbone": weights_sha256(backbone),
        "finetuned": weights_sha256(finetuned),
    }
    # No seed: the ticket is a deterministic function of the two checkpoints.
    summary = run_metadata(
        dataclasses.asdict(cfg),
        None,
        inputs,
        {
            "maskable_entries": maskable,
            "selected_entries": selected,
            "share_of_maskable": selected / maskable,
            "share_of_all_parameters": selected / sum(t.numel() for t in theta0.values()),
            "what_p_is_a_share_of": what_p_means(cfg),
            "layers": layer_layout(shapes),
        },
    )
    with atomic_dir(out) as tmp:
        save_file({name: mask.contiguous() for name, mask in masks.items()}, tmp / "mask.safetensors")
        table.to_csv(tmp / "ticket_share.csv", index=False, float_format="%.6g")
        write_json(tmp / "ticket.json", summary)
        plot_share(table, tmp / "ticket_share.png")
    logger.info(
        "ticket: %d of %d maskable entries (%.3f%%), %.3f%% of all parameters",
        selected,
        maskable,
        100 * summary["share_of_maskable"],
        100 * summary["share_of_all_parameters"],
    )
    return summary
