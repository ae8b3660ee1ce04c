"""A trained prompt's artifact: writing it, and rebuilding the prompted model from it.

The artifact (a folder) holds ``prompt.safetensors``, ``meta.json`` and ``train_log.jsonl``;
``full_ft`` adds ``backbone/`` (its weights changed), ``spt`` adds ``peft/`` where PEFT's prompt
tuning reproduces the layout (``xlprompt.methods.peft_export``; meta.json's ``peft_export`` says why not
elsewhere), an export that ``peft.PeftModel.from_pretrained`` loads and runs. ``ltp`` stores only the
ticket's entries in ``prompt.safetensors``: ``ticket.<param>.index`` (flat positions) and ``ticket.<param>.value``
(their trained values; values rather than deltas, so that the rebuilt model is bit-exact).
``lora`` adds ``lora/``, PEFT's adapter files (``PeftModel.from_pretrained(backbone, lora/)``);
``bitfit`` stores the trained biases as ``bitfit.<param>`` in ``prompt.safetensors``. ``deep_prompt``
stores its prefixes (L, layers x 2 x width, after any reparameterization) as PEFT prefix tuning in
``prefix/`` where PEFT's forward reproduces them (meta.json's ``peft_export``), else as ``prefix`` in
``prompt.safetensors``; meta.json's ``deep_prompt`` says which layers and how. meta.json
records the bytes of what was trained (``artifact_bytes``, ``artifact_share`` of a full
checkpoint) and the number of trained parameters (``trainable_parameters``, ``trainable_share`` of
the backbone's ``backbone_parameters``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import save_file

from xlprompt.methods.adapters import (
    BITFIT_PREFIX,
    LORA_FOLDER,
    apply_bias_entries,
    bias_entries,
    bias_names,
    load_lora,
    save_lora,
)
from xlprompt.methods.deep_prompt import PREFIX_KEY, DeepPrompt, DeepPromptedLM
from xlprompt.methods.ltp import apply_ticket_entries, ticket_entries
from xlprompt.methods.peft_export import PREFIX_FOLDER, PeftPlan, export_prefix_tuning, export_prompt_tuning
from xlprompt.models.backbone import Loaded, load_backbone
from xlprompt.models.families import family_of, input_width
from xlprompt.models.prompting import PromptedLM, SoftPrompt
from xlprompt.models.tasks import word_ids
from xlprompt.runtime.methods import METHODS_BY_NAME, method_of

if TYPE_CHECKING:  # transformers for the hints only: importing it costs a second
    from transformers import PreTrainedTokenizerBase
from xlprompt.runtime.io import atomic_dir, check_safetensors, load_tensors, read_json, sha256_file, write_json
from xlprompt.runtime.settings import DeepPromptSettings, TrainConfig


def write_artifact(
    out: Path,
    model: PromptedLM,
    tokenizer,
    cfg: TrainConfig,
    log_rows: list[dict],
    meta: dict,
    masks: dict[str, torch.Tensor],
    snapshots: dict[str, torch.Tensor],
    peft_plan: PeftPlan,
    verbalizer_ids: list[list[int]],
    adapter=None,
) -> None:
    """The artifact folder; ``adapter``: lora's PEFT wrapper (its adapter goes to ``lora/``)."""
    with atomic_dir(out) as tmp:
        tensors = {}
        if model.prompt is not None:
            with torch.no_grad():
                tensors["prompt"] = model.prompt().detach().cpu().contiguous()  # (L, d): what the backbone sees
            if isinstance(model.prompt, SoftPrompt) and model.prompt.reparam is not None:
                tensors["prompt_raw"] = model.prompt.embedding.detach().cpu().contiguous()
                tensors.update(
                    {f"reparam.{k}": v.cpu().contiguous() for k, v in model.prompt.reparam.state_dict().items()}
                )
            tensors.update({k: v.cpu().contiguous() for k, v in snapshots.items()})
        else:
            tensors["prompt"] = torch.zeros(0, input_width(model.backbone))
        tensors.update(ticket_entries(model.backbone, masks))
        if cfg.spec.backbone == "biases":
            tensors.update(bias_entries(model.backbone, bias_names(model.backbone, cfg.bitfit)))
        prefixes = None
        deep = model.deep if isinstance(model, DeepPromptedLM) else None
        if deep is not None:
            with torch.no_grad():
                prefixes = deep.prefixes().detach().cpu().contiguous()  # (L, layers x 2 x w): what layers read
            if not peft_plan.exported:
                tensors[PREFIX_KEY] = prefixes
        save_file(tensors, tmp / "prompt.safetensors", metadata={"method": cfg.method})
        files = ["prompt.safetensors"]  # what training produced (the tokenizer's copy in backbone/ aside)
        if deep is not None and prefixes is not None and peft_plan.exported:
            export_prefix_tuning(
                tmp / PREFIX_FOLDER,
                prefixes,
                model.backbone,
                peft_plan,
                len(deep.layers),
                deep.heads,
                meta["verbalizers"],
                verbalizer_ids,
            )
            files += [f"{PREFIX_FOLDER}/adapter_config.json", f"{PREFIX_FOLDER}/adapter_model.safetensors"]
        if adapter is not None:
            save_lora(adapter, tmp / LORA_FOLDER)
            files += [f"{LORA_FOLDER}/adapter_config.json", f"{LORA_FOLDER}/adapter_model.safetensors"]
        if cfg.spec.backbone == "all":
            model.backbone.save_pretrained(tmp / "backbone")
            tokenizer.save_pretrained(tmp / "backbone")
            files.append("backbone/model.safetensors")
        size = sum((tmp / name).stat().st_size for name in files)
        write_json(
            tmp / "meta.json",
            {
                **meta,
                "snapshot_step": cfg.snapshot_step if "prompt_snapshot" in snapshots else 0,
                "artifact_bytes": size,
                "artifact_share": size / meta["full_checkpoint_bytes"],
                "files_sha256": {name: sha256_file(tmp / name) for name in files},
            },
        )
        write_train_log(tmp / "train_log.jsonl", log_rows)
        if peft_plan.exported and model.prompt is not None:
            export_prompt_tuning(
                tmp / "peft", tensors["prompt"], model.backbone, peft_plan, meta["verbalizers"], verbalizer_ids
            )


def deep_prompt_meta(deep: DeepPrompt, plan: PeftPlan) -> dict:
    """meta.json's account of a deep prompt's prefixes: where they go, their shape, where they are kept."""
    where = (
        f"{PREFIX_FOLDER}/adapter_model.safetensors (PEFT prefix tuning, prompt_embeddings)"
        if plan.exported
        else f"prompt.safetensors ({PREFIX_KEY})"
    )
    return {
        "layers": deep.layers,
        "prefix_length": deep.length,
        "heads": deep.heads,
        "head_dim": deep.head_dim,
        "stored": where,
        "layout": "(L, layers x 2 x heads x head_dim): for the j-th prefixed layer, block 2j "
        "holds its keys, 2j + 1 its values (PEFT's prefix tuning layout)",
        "reparameterization": (
            "trained through PEFT's MLP; the stored prefixes are its output, so predicting needs no MLP"
            if deep.encoder.prefix_projection
            else "none"
        ),
    }


def write_train_log(path: Path, log_rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in log_rows)


def artifact_tensors(artifact: Path, meta: dict | None = None) -> dict[str, torch.Tensor]:
    """An artifact's ``prompt.safetensors``, checked against the sha256 its meta.json recorded."""
    meta = meta if meta is not None else read_json(Path(artifact) / "meta.json")
    expected = meta.get("files_sha256", {}).get("prompt.safetensors")
    return load_tensors(Path(artifact) / "prompt.safetensors", expected)


def load_trained(
    artifact: Path,
    backbone_dir: Path,
    task: str | None = None,
    shared: Loaded | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[PromptedLM, PreTrainedTokenizerBase]:
    """Rebuild the prompted model of an artifact, reading labels through ``task``'s words.

    ``task`` defaults to the artifact's only task (a multi-task prompt needs it named).
    ``shared``: an already loaded (backbone, tokenizer) of ``backbone_dir`` to reuse, for
    artifacts that leave the backbone as it is (full_ft, ltp, lora and bitfit bring their own weights,
    loaded in ``dtype``, the backbone's weight type: backbone.dtype).
    """
    meta = read_json(artifact / "meta.json")
    tasks = meta.get("tasks", [meta["task"]])
    task = task or (tasks[0] if len(tasks) == 1 else None)
    if task is None or task not in tasks:
        raise ValueError(f"{artifact}: trained on {tasks}; name one of them to read its labels (got {task!r})")
    tensors = artifact_tensors(artifact, meta)
    # deep_prompt's prefixes (a projected prompt's method names its projector, an input-level prompt's source)
    if meta["method"] in METHODS_BY_NAME and not method_of(meta["method"]).input_prompt:
        return load_deep_prompt(artifact, backbone_dir, meta, tensors, task, shared, dtype)
    lora = artifact / LORA_FOLDER
    own_weights = (
        (artifact / "backbone").exists()
        or lora.exists()
        or any(k.startswith(("ticket.", BITFIT_PREFIX)) for k in tensors)
    )
    if shared is not None and not own_weights:
        backbone, tokenizer = shared
    else:
        own = artifact / "backbone"
        backbone, tokenizer = load_backbone(own if own.exists() else backbone_dir, dtype)
    backbone.requires_grad_(False)
    apply_ticket_entries(backbone, tensors)
    apply_bias_entries(backbone, tensors)
    if lora.exists():
        check_recorded(artifact, meta, LORA_FOLDER)
        check_safetensors(lora / "adapter_model.safetensors")
        backbone = load_lora(backbone, lora)
    prompt = None
    if tensors["prompt"].shape[0]:
        # The stored prompt is the effective one (reparameterization already applied).
        prompt = SoftPrompt(*tensors["prompt"].shape)
        prompt.embedding.data.copy_(tensors["prompt"])
    model = PromptedLM(
        backbone,
        prompt,
        word_ids(tokenizer, meta["verbalizers"][task], artifact / "meta.json", family_of(backbone)),
        meta.get("prompt_position", ""),
        meta["config"].get("loss", "label_words"),
    )
    model.eval()
    return model, tokenizer


def check_recorded(artifact: Path, meta: dict, folder: str) -> None:
    """The files of ``folder`` in the artifact have the sha256 meta.json recorded for them."""
    for name, expected in meta.get("files_sha256", {}).items():
        if name.startswith(f"{folder}/") and sha256_file(artifact / name) != expected:
            raise ValueError(
                f"{artifact / name}: its sha256 differs from the one recorded when it was written "
                "(the file was changed or damaged); rerun the job that writes it"
            )


def load_deep_prompt(
    artifact: Path,
    backbone_dir: Path,
    meta: dict,
    tensors: dict[str, torch.Tensor],
    task: str,
    shared: Loaded | None,
    dtype: torch.dtype = torch.float32,
) -> tuple[DeepPromptedLM, PreTrainedTokenizerBase]:
    """A deep prompt's model: the backbone as it is (``shared`` when given: the prefixes enter only inside the
    model's own forward) and the stored prefixes, from PEFT's file or from prompt.safetensors."""
    backbone, tokenizer = shared if shared is not None else load_backbone(backbone_dir, dtype)
    backbone.requires_grad_(False)
    if PREFIX_KEY in tensors:
        stored = tensors[PREFIX_KEY]
    else:
        check_recorded(artifact, meta, PREFIX_FOLDER)
        stored = load_tensors(artifact / PREFIX_FOLDER / "adapter_model.safetensors")["prompt_embeddings"]
    settings = DeepPromptSettings(**{**meta["config"]["deep_prompt"], "reparameterization": False})
    deep = DeepPrompt(backbone, stored.shape[0], settings, stored=stored)
    model = DeepPromptedLM(
        backbone,
        deep,
        word_ids(tokenizer, meta["verbalizers"][task], artifact / "meta.json", family_of(backbone)),
        meta["config"].get("loss", "label_words"),
    )
    model.eval()
    return model, tokenizer
