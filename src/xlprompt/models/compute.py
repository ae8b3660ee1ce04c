"""Where a stage computes and in which precision the backbone's weights sit (config ``backbone.dtype``).

Where: the claimed GPU (TF32 matmuls, fused AdamW) or the CPU. xlprompt.runtime.devices narrows
CUDA_VISIBLE_DEVICES to the one device a job claimed, so "cuda" here is that device.

Precision: float32 weights (the default) compute in full precision on the CPU, the reference numbers, and
under bf16 autocast on a GPU that has it. bfloat16 or float16 weights (a frozen 8B backbone in 16 GB instead
of 32) compute in their own type, without autocast; what trains keeps an fp32 master copy
(xlprompt.methods.precision) and the loss is taken in fp32.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import torch

if TYPE_CHECKING:  # transformers for the hints only: importing it costs a second
    pass

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=torch.nn.Module)


# backbone.dtype: the names a config gives, and the torch types the weights load in.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Compute:
    device: torch.device
    bf16: bool  # autocast matmuls to bfloat16 (GPUs that support it; float32 weights only)
    dtype: torch.dtype = torch.float32  # the backbone's weights (backbone.dtype)

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def optimizer(self, groups: list[dict], weight_decay: float) -> torch.optim.Optimizer:
        """AdamW; the fused kernel on a GPU (one launch for all parameters)."""
        return torch.optim.AdamW(groups, weight_decay=weight_decay, fused=True if self.device.type == "cuda" else None)

    @property
    def scoring_batch(self) -> int:
        """Sequences (prompts x examples) per scoring pass: 128 on the CPU, which is near its matmul
        rate there already; 1,024 on a GPU, which a pass of 128 leaves mostly idle (launch-bound)."""
        return 1024 if self.device.type == "cuda" else 128


CPU = Compute(torch.device("cpu"), bf16=False)


def choose_compute(device: str = "auto", dtype: str = "float32") -> Compute:
    """``auto``: the (claimed) GPU when CUDA is there, else the CPU; ``cpu``: the CPU. ``dtype``: the
    backbone's weights (:data:`DTYPES`).

    Logs where the stage computes either way, so that every GPU job's log names its device.
    """
    if dtype not in DTYPES:
        raise ValueError(f"backbone dtype must be one of {list(DTYPES)}, got {dtype!r}")
    weights = DTYPES[dtype]
    if device == "cpu" or not torch.cuda.is_available():
        logger.info(
            "computing on the CPU (%s), %s weights",
            "--device cpu" if device == "cpu" else "no CUDA device visible",
            dtype,
        )
        return Compute(torch.device("cpu"), bf16=False, dtype=weights)
    torch.backends.cuda.matmul.allow_tf32 = True  # TF32 for what stays in float32
    torch.backends.cudnn.allow_tf32 = True
    compute = Compute(torch.device("cuda"), bf16=weights == torch.float32 and _bf16_supported(), dtype=weights)
    logger.info(
        "computing on %s, %s weights (bf16 autocast: %s, TF32 on)", torch.cuda.get_device_name(0), dtype, compute.bf16
    )
    return compute


def to_device(batch: dict[str, torch.Tensor], compute: Compute) -> dict[str, torch.Tensor]:
    if compute.device.type == "cpu":
        return batch
    return {key: value.to(compute.device, non_blocking=True) for key, value in batch.items()}


@functools.cache
def _bf16_supported() -> bool:
    return torch.cuda.is_bf16_supported()


def weights_dtype(module: torch.nn.Module) -> torch.dtype:
    """The type a model's backbone weights sit in (its input embeddings'; a prompt beside them is fp32)."""
    backbone: Any = getattr(module, "backbone", module)
    return backbone.get_input_embeddings().weight.dtype


def compute_of(module: torch.nn.Module) -> Compute:
    """The compute a model already sits on (its first parameter's device, its backbone's weights' type);
    asked every step."""
    device = next(module.parameters()).device
    dtype = weights_dtype(module)
    if device.type == "cpu":
        return CPU if dtype == torch.float32 else Compute(device, bf16=False, dtype=dtype)
    return Compute(device, bf16=device.type == "cuda" and dtype == torch.float32 and _bf16_supported(), dtype=dtype)


def place(model: M, compute: Compute) -> M:
    """``model`` (a backbone, or a prompted model holding one) on ``compute``'s device; on a GPU the
    backbone attends with SDPA kernels (xlprompt loads backbones with eager attention, about 1.3x
    faster on a few CPU cores with padding masks)."""
    backbone: Any = getattr(model, "backbone", model)  # a transformers model: set_attn_implementation
    if compute.device.type == "cuda" and switches_to_sdpa(backbone):
        backbone.set_attn_implementation("sdpa")
    return model.to(compute.device)


def switches_to_sdpa(backbone: torch.nn.Module) -> bool:
    """Whether a backbone can attend with SDPA kernels: built on transformers' attention interface (XGLM,
    BLOOM and mT5 are not) and not refusing SDPA (Gemma 2: its soft-capped attention scores need eager)."""
    return bool(getattr(backbone, "_supports_attention_backend", False) and getattr(backbone, "_supports_sdpa", True))


def linear_schedule(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up to 1, then linear decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))
