"""``python -m xlprompt <stage> [args]``: run one workflow stage."""

from __future__ import annotations

import errno
import importlib
import sys

from xlprompt.runtime.logs import log_section_times

# A full disk, a quota, a read-only or foreign-owned folder: the user's to fix, not a bug.
UNWRITABLE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}

STAGES = {
    "generate_world": "Generate the offline multilingual world (tasks and corpus).",
    "download_dataset": "Fetch a Hub data set at its pinned revision (or read local files) into the data contract.",
    "assemble_data": "Put an experiment's downloaded tasks into one data folder (tasks, corpus, languages).",
    "pretrain_backbone": "Train a tokenizer and pretrain a tiny XLM-R with masked-LM loss.",
    "download_backbone": "Fetch a Hub backbone (safetensors, config, tokenizer) at a pinned revision.",
    "finetune_mlm": "LTP: fine-tune a backbone on unlabeled text (its family's LM objective).",
    "select_ticket": "LTP: the winning ticket, top p of |theta_MLM - theta_0|.",
    "train_prompt": "Train one soft prompt (spt, full_ft, ltp, lora, bitfit, controls) on one task.",
    "evaluate": "Evaluate one trained prompt on every language's test split.",
    "evaluate_transfer": "SPoT: evaluate a target's transferred prompts, and the sources zero-shot.",
    "train_projector": "Cross-model transfer: train a projector from one backbone's prompt into another.",
    "project_prompt": "Cross-model transfer: map a prompt into another backbone with a projector.",
    "similarity": "Similarity of sources and targets: prompt cosines, Euclidean, neuron overlap (ON).",
    "prompt_activations": "ON: activated FFN neurons of trained prompts, one batched pass.",
    "neuron_masking": "ON: accuracy with a prompt's most activated neurons switched off.",
    "correlate": "ON: correlation of every similarity with transfer, bootstrap intervals.",
    "aggregate": "Collect metrics into tidy tables.",
    "transfer_tables": "SPoT: transfer.csv (gain over random init) and retrieval.csv.",
    "plot": "Draw the figures from the tables.",
    "plot_curves": "Training curves (validation loss and accuracy per step) of trained prompts, per task.",
    "plot_transfer": "SPoT: the source x target heatmap of transfer gains.",
    "plot_similarity": "ON: similarity against transfer, and the neuron masking check.",
    "headline": "Print where the results are and the headline table (accuracy per method and language).",
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        width = max(map(len, STAGES))
        lines = [f"  {name:<{width}}  {text}" for name, text in STAGES.items()]
        print("usage: python -m xlprompt <stage> [--help | args]\n\nstages:\n" + "\n".join(lines))
        return
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        sys.exit(f"xlprompt: unknown stage {stage!r}; choose from {', '.join(STAGES)}")
    try:
        importlib.import_module(f"xlprompt.stages.{stage}").main(rest)
    except OSError as err:
        if err.errno not in UNWRITABLE:
            raise
        # Outputs are written under temporary names and renamed when complete: the failed
        # write left no partial file behind, so the message can say so.
        where = err.filename or "the output folder"
        sys.exit(
            f"xlprompt {stage}: cannot write {where}: {err.strerror}; nothing was kept. "
            "Free space or make the folder writable, then rerun the same command."
        )
    finally:
        log_section_times()  # e.g. "time in tokenising: 0.031 s" (benchmarks/bench_workflow.py sums them)


if __name__ == "__main__":
    main()
