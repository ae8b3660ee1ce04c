"""Training with a half-precision backbone: fp32 master copies, and a stop at the first non-finite step.

A bfloat16 or float16 backbone (config ``backbone.dtype``) holds its weights in 16 bits. Whatever trains
must not: an Adam step on a 16-bit weight rounds small updates away (bfloat16 keeps 8 significant bits) and a
16-bit second moment under- or overflows (PEFT issue 62: NaN at the first step). So

- prompts, reparameterizations and deep_prompt's prefixes are xlprompt's own fp32 parameters; they enter the
  backbone cast to its type (xlprompt.models.prompting.lay_out_rows, xlprompt.methods.deep_prompt);
- LoRA's matrices are fp32 (PEFT casts adapters to fp32 over a 16-bit base: ``autocast_adapter_dtype``);
- backbone weights that train (full_ft, ltp's ticket, bitfit's biases) get an fp32 master copy here: the
  optimizer steps the masters (its state fp32 too), and each step's result is rounded into the weights the
  forward reads (:class:`MasterWeights`), as mixed-precision training does (Micikevicius et al. 2018).

The loss is computed in fp32 from fp32 logits. A step whose loss or gradient is not finite stops the run
(:class:`NonFiniteStep`) before it touches any weight, so the last checkpoint written stays the last good one.
"""

from __future__ import annotations

import torch

# What a non-finite step's message suggests, by the backbone's weight type.
REMEDIES = {
    torch.float16: (
        "float16 holds values up to 65504 only and xlprompt does not scale the loss: use backbone.dtype bfloat16 "
        "(same memory, float32's range) or float32"
    ),
    torch.bfloat16: "lower training.lr (and backbone_lr), or use backbone.dtype float32",
    torch.float32: "lower training.lr (and backbone_lr)",
}


class NonFiniteStep(RuntimeError):
    """A training step whose loss or gradient is NaN or infinite; nothing of the step was applied."""

    run: int = 0  # in a stacked step of several runs, whose (xlprompt.methods.training.joint_train_step)


class MasterWeights:
    """fp32 masters of the 16-bit parameters in an optimizer's groups (built before the optimizer).

    Each 16-bit parameter in ``groups`` is replaced there by an fp32 copy, so the optimizer and its state
    see fp32 only; fp32 parameters (prompts, LoRA) stay as they are. After ``backward``,
    :meth:`gradients_to_masters` moves the 16-bit gradients onto the masters (in fp32); after the optimizer's
    step, :meth:`masters_to_weights` rounds the masters into the weights the forward reads. An entry whose
    gradient is zero and that has no weight decay (ltp's entries outside the ticket) keeps its master and so
    its weight bit for bit.
    """

    def __init__(self, groups: list[dict]) -> None:
        self.pairs: list[tuple[torch.nn.Parameter, torch.nn.Parameter]] = []
        for group in groups:
            params = []
            for param in group["params"]:
                if param.dtype == torch.float32:
                    params.append(param)
                    continue
                master = torch.nn.Parameter(param.detach().float())
                self.pairs.append((param, master))
                params.append(master)
            group["params"] = params

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def gradients_to_masters(self) -> None:
        for weight, master in self.pairs:
            master.grad = None if weight.grad is None else weight.grad.float()
            weight.grad = None

    @torch.no_grad()
    def masters_to_weights(self) -> None:
        for weight, master in self.pairs:
            weight.copy_(master)

    def state(self) -> dict[str, torch.Tensor]:
        """The masters, for a checkpoint (a 16-bit weight alone would lose what rounding hid)."""
        return {str(index): master.detach() for index, (_, master) in enumerate(self.pairs)}

    @torch.no_grad()
    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Masters from :meth:`state`'s tensors, rounded into the weights."""
        if len(tensors) != len(self.pairs):
            raise ValueError(f"checkpoint holds {len(tensors)} fp32 masters, the run trains {len(self.pairs)}")
        for index, (_, master) in enumerate(self.pairs):
            master.copy_(tensors[str(index)])
        self.masters_to_weights()


def gradient_norm(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """The global L2 norm of the gradients ``optimizer`` steps on (0 without any)."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))


def check_finite(loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
    """Raise :class:`NonFiniteStep` naming what is not finite (one device sync per step)."""
    if bool(torch.isfinite(loss) & torch.isfinite(grad_norm)):
        return
    what = f"the loss is {loss.item()}" if not torch.isfinite(loss) else f"the gradient's norm is {grad_norm.item()}"
    raise NonFiniteStep(what)


def non_finite_message(what: str, step: int, dtype: torch.dtype, checkpoint: str) -> str:
    """What a run stopped by a non-finite step says: where, in which precision, what to do, what is kept."""
    name = str(dtype).removeprefix("torch.")
    return (
        f"training step {step}: {what} (backbone weights in {name}); nothing of this step was applied. "
        f"Remedy: {REMEDIES.get(dtype, REMEDIES[torch.float32])}. {checkpoint}"
    )
