"""The backbone weights that ``lora`` and ``bitfit`` train, and their artifacts.

- ``lora`` (Hu et al. 2022), through PEFT: :func:`attach_lora` injects LoRA layers into the
  backbone's target modules (``peft.get_peft_model``; the backbone module itself is changed in
  place, so the prompted model keeps calling it as before). Only the adapters' A and B train;
  every original weight stays bit-identical (PEFT keeps it as ``<module>.base_layer``). The
  artifact's ``lora/`` is PEFT's own ``save_pretrained`` output (``adapter_config.json``,
  ``adapter_model.safetensors``): ``peft.PeftModel.from_pretrained(backbone, artifact / "lora")``
  rebuilds the adapted backbone, and :func:`load_lora` does exactly that.
- ``bitfit`` (Ben Zaken et al. 2022): :func:`bias_names` picks every bias term of the backbone
  (attention, feed-forward, layer norms, embedding layer norm; the LM head's only on request).
  PEFT has no BitFit. The artifact stores the trained biases as ``bitfit.<name>`` in
  ``prompt.safetensors``; :func:`apply_bias_entries` writes them back into a fresh backbone.

The prompt, where one is configured, trains next to either, as with ``full_ft`` and ``ltp``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from xlprompt.methods.ltp import module_kind
from xlprompt.models.families import LORA_MODULES, LORA_TARGETS, NO_BIASES, family_of
from xlprompt.runtime.settings import BitFitSettings, LoraSettings

if TYPE_CHECKING:  # transformers for the hints only: importing it costs a second
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

LORA_FOLDER = "lora"  # the artifact's subfolder with PEFT's adapter files
BITFIT_PREFIX = "bitfit."  # keys of the trained biases in prompt.safetensors
LORA_PREFIX = "lora_"  # PEFT's LoRA parameters (lora_A, lora_B) carry it in their names


@contextlib.contextmanager
def _quiet_peft():
    """PEFT 0.21 reads ``model.is_gradient_checkpointing``, which transformers 5 deprecates with a
    FutureWarning in every job's log; nothing to act on here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.* is deprecated", category=FutureWarning)
        yield


def lora_targets(backbone: PreTrainedModel, settings: LoraSettings) -> list[str]:
    """The module names LoRA adapts: the configured ones, else the model type's defaults."""
    model_type = backbone.config.model_type
    if settings.target_modules:
        return list(settings.target_modules)
    if model_type not in LORA_TARGETS:
        raise ValueError(
            f"lora: no default target modules for model type {model_type!r}; name them in "
            f"lora.target_modules (known: {sorted(LORA_TARGETS)})"
        )
    return list(LORA_TARGETS[model_type])


def lora_config(backbone: PreTrainedModel, settings: LoraSettings):
    """PEFT's LoraConfig for ``backbone`` (task type as :mod:`xlprompt.methods.peft_export` uses for the family)."""
    from peft import LoraConfig

    from xlprompt.methods.peft_export import TASK_TYPES

    targets = lora_targets(backbone, settings)
    known = LORA_MODULES.get(backbone.config.model_type)
    unknown = [t for t in targets if known is not None and t.split(".")[-1] not in known]
    if unknown:
        raise ValueError(
            f"lora.target_modules: {unknown} are not linear modules of {backbone.config.model_type}'s "
            f"layers; allowed: {list(known or ())}"
        )
    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,  # type: ignore[arg-type]  # PEFT annotates int; it scales by alpha / r, a float
        lora_dropout=settings.dropout,
        target_modules=targets,
        bias="none",
        task_type=TASK_TYPES[family_of(backbone)],
    )


def attach_lora(backbone: PreTrainedModel, settings: LoraSettings):
    """Inject LoRA layers into ``backbone`` (in place) and return PEFT's wrapper, which saves them.

    LoRA's A starts random (from torch's global generator: seed it first), B at zero, so the
    adapted backbone starts out computing exactly what the backbone computed.
    """
    from peft import get_peft_model

    with _quiet_peft():
        adapter = get_peft_model(backbone, lora_config(backbone, settings))
    if adapter.get_base_model() is not backbone:  # the prompted model keeps using `backbone`
        raise RuntimeError("PEFT did not adapt the backbone in place")
    return adapter


def lora_parameters(backbone: PreTrainedModel) -> list[torch.nn.Parameter]:
    """The LoRA matrices in ``backbone`` (PEFT's own rule: parameters whose name holds ``lora_``)."""
    return [param for name, param in backbone.named_parameters() if LORA_PREFIX in name]


def save_lora(adapter, folder: Path) -> None:
    """PEFT's own save of the adapter: ``adapter_config.json`` and ``adapter_model.safetensors``."""
    adapter.save_pretrained(str(folder), safe_serialization=True)


def load_lora(backbone: PreTrainedModel, folder: Path) -> PreTrainedModel:
    """``backbone`` with the adapter of ``folder`` loaded the way PEFT documents it (inference mode)."""
    from peft import PeftModel

    with _quiet_peft():
        return PeftModel.from_pretrained(backbone, str(folder), is_trainable=False).get_base_model()


def backbone_parameter_count(backbone: PreTrainedModel) -> int:
    """The backbone's own parameters (tied ones once), LoRA's left out."""
    return sum(param.numel() for name, param in backbone.named_parameters() if LORA_PREFIX not in name)


def bias_names(backbone: PreTrainedModel, settings: BitFitSettings = BitFitSettings()) -> list[str]:
    """Every bias term of the backbone that bitfit trains, in the model's order (tied ones once).

    All of the transformer's biases: attention and feed-forward projections, layer norms, the
    embeddings' layer norm; the LM head's (masked LMs' transform and output bias) with ``lm_head``.
    A backbone without any is an error naming why (mT5: none at all).
    """
    names = [
        name
        for name, _ in backbone.named_parameters()
        if name.split(".")[-1] == "bias" and (settings.lm_head or module_kind(name) != "lm_head")
    ]
    if not names:
        model_type = backbone.config.model_type
        why = NO_BIASES.get(model_type, f"{model_type} has no bias terms outside its LM head")
        raise ValueError(
            f"method bitfit trains only bias terms, and {why}: nothing would train "
            "(use lora, ltp or full_ft on this backbone)"
        )
    return names


def bias_entries(backbone: PreTrainedModel, names: list[str]) -> dict[str, torch.Tensor]:
    """The trained biases, as the artifact stores them: ``bitfit.<name>`` -> tensor (on the CPU)."""
    params = dict(backbone.named_parameters())
    return {f"{BITFIT_PREFIX}{name}": params[name].detach().cpu().contiguous() for name in names}


def apply_bias_entries(backbone: PreTrainedModel, tensors: dict[str, torch.Tensor]) -> None:
    """Write an artifact's trained biases into ``backbone`` (checked to fit it)."""
    params = dict(backbone.named_parameters())
    with torch.no_grad():
        for key, value in tensors.items():
            if not key.startswith(BITFIT_PREFIX):
                continue
            name = key[len(BITFIT_PREFIX) :]
            if name not in params or params[name].shape != value.shape:
                raise ValueError(f"bias {name!r} of the artifact does not fit the backbone (another model?)")
            params[name].copy_(value)
