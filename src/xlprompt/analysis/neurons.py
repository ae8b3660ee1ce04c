"""Activated neurons of soft prompts (Su et al. 2022) and their overlap (ON).

A prompt's activation vector is every layer's FFN intermediate output after the
non-linearity, at one position, with the frozen backbone. With ``mode: alone`` the prompt is fed
alone, without task text, laid out as ``neurons.layout`` says (:func:`prompt_alone_activations`):

- ``xlprompt`` (the default): as xlprompt trains prompts, e.g. ``[P_1..P_L] <s> <mask> </s>`` for
  encoder masked LMs with ordinary position ids, read at ``<mask>`` (decoder-only and
  encoder-decoder models: see the function). This is not Su et al.'s input.
- ``su2022``: Su et al.'s, rebuilt from their code (thunlp/Prompt-Transferability): the input is
  the prompt then ``<s>`` (formatter/activate_neuronPromptRobertaFormatter.py, ``process``:
  ``tokens = self.prompt_prefix + sent`` with ``sent = encode("<s>")``, prompt ids -1..-L);
  ``<mask>``'s word embedding overwrites prompt slot 0 and the position embeddings of the prompt rows
  are zero (Prompt-Transferability-1.0/model/modelling_roberta.py, ``RobertaEmbeddings.forward``:
  ``prompt_emb.data[:,0,:] = mask_prompt_emb``, ``position_embeddings[:,:100,:] = 0`` for their
  100-token prompts; ``<s>`` keeps position id padding_idx + 1, as ``create_position_ids_from_input_ids``
  there counts only ids >= 0); activations are read at position 0, the mask slot (activate_neuron.py:
  a forward hook on ``encoder.layer[n].intermediate``, then ``outputs[:,:,:1,:]``). XLM-R and
  RoBERTa only (``SU2022_MODEL_TYPES``): the mechanism is RoBERTa's embedding layer.

With ``mode: task`` the vector is averaged over real task inputs, read where the prompted model
predicts the label, for every family (layout xlprompt only).

In a gated MLP (Llama, Mistral, Qwen, Gemma: ``down_proj(act(gate_proj x) * up_proj x)``) a neuron's value
is the input of ``down_proj``: one number per intermediate unit, the weight its column of ``down_proj``
gets, which is what a ReLU FFN's post-activation value is to its output matrix. act(gate x) alone would
miss the up projection's sign and scale.

A neuron is active when its value is > 0. ON(A, B) is the cosine of the two binary vectors,
``|A and B| / sqrt(|A| |B|)`` (not Jaccard, which is an option), over all layers and over
windows of consecutive layers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from xlprompt.data.encoding import EncodedSplit, SpecialTokens
from xlprompt.models.compute import compute_of, to_device
from xlprompt.models.families import SU2022_MODEL_TYPES, architecture_of, family_of
from xlprompt.models.prompting import PromptedLM, lay_out, run_backbone
from xlprompt.runtime.io import read_json
from xlprompt.runtime.settings import NEURON_LAYOUTS, NeuronSettings

if TYPE_CHECKING:  # transformers for the hints only: importing it costs a second
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)


def activation_key(name: str, artifact: Path) -> str:
    """``<name>/L<length>/seed<seed>``: the name of a prompt's activations in the file."""
    config = read_json(artifact / "meta.json")["config"]
    return f"{name}/L{config['prompt_length']}/seed{config['seed']}"


def ffn_modules(backbone: PreTrainedModel) -> list[nn.Module]:
    """Per layer, the module that carries the FFN neurons (the model type's record names it,
    ``Architecture.ffn_activation``; :func:`record_ffn` reads its output, or its input where the record's
    ``ffn_reads`` is "input"):

    - encoder masked LMs (XLM-R, BERT): ``encoder.layer[i].intermediate`` = act(dense(x));
    - XGLM: ``layers[i].activation_fn`` (applied to fc1); BLOOM: ``h[i].mlp.gelu_impl``;
    - mT5 / T5 (Su et al. hook the decoder): ``decoder.block[i].layer[-1].DenseReluDense.act``
      (for gated mT5 the gate's activation, act(wi_0 x): active exactly where wi_0 x > 0);
    - gated decoder LLMs (Llama, Mistral, Qwen, Gemma): the input of ``layers[i].mlp.down_proj``.
    """
    layers_path, module_path = architecture_of(backbone).ffn_activation
    try:
        modules = [_submodule(layer, module_path) for layer in _submodule(backbone.base_model, layers_path)]
    except (AttributeError, IndexError, TypeError):
        raise ValueError(
            f"activated neurons: {type(backbone).__name__} has no {layers_path}[i].{module_path}, the FFN hook point "
            "its model type's record names (xlprompt.models.families.ARCHITECTURES)"
        ) from None
    if not all(isinstance(m, nn.Module) for m in modules) or len({id(m) for m in modules}) != len(modules):
        raise ValueError(
            f"{type(backbone).__name__}: the FFN activations are not one module per layer; cannot hook them"
        )
    return modules


def _submodule(module: Any, path: str) -> Any:
    """``module``'s attribute at a dotted ``path``, where a number indexes a list ("layer.-1.act")."""
    for part in path.split("."):
        module = module[int(part)] if part.lstrip("-").isdigit() else getattr(module, part)
    return module


@contextmanager
def record_ffn(backbone: PreTrainedModel, switch_off: list[torch.Tensor] | None = None) -> Iterator[list[torch.Tensor]]:
    """Record each layer's FFN activations (B, S, ffn) while the block runs.

    ``switch_off[l]``: a boolean (ffn,) mask of layer l's neurons to set to 0 (the masking
    check); what is recorded is then the output after switching off. The masks move to the
    backbone's device once here, not in every forward pass.
    """
    modules = ffn_modules(backbone)
    reads_input = architecture_of(backbone).ffn_reads == "input"
    if switch_off is not None:
        device = next(backbone.parameters()).device
        switch_off = [mask.to(device) for mask in switch_off]
    outputs: list[torch.Tensor] = [torch.empty(0)] * len(modules)

    def recorder(index: int) -> Callable[[torch.Tensor], torch.Tensor]:
        def record(value: torch.Tensor) -> torch.Tensor:
            if switch_off is not None:
                value = value.masked_fill(switch_off[index], 0.0)
            outputs[index] = value
            return value

        return record

    handles = []
    for index, module in enumerate(modules):
        record = recorder(index)
        if reads_input:  # a forward pre-hook: the module's input, replaced by what is recorded
            handles.append(module.register_forward_pre_hook(lambda _m, args, r=record: (r(args[0]), *args[1:])))
        else:
            handles.append(module.register_forward_hook(lambda _m, _args, output, r=record: r(output)))
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def check_su2022(backbone: PreTrainedModel) -> None:
    """Refuse a backbone that Su et al.'s layout does not apply to, naming the key and the model."""
    model_type = getattr(backbone.config, "model_type", None)
    if model_type not in SU2022_MODEL_TYPES:
        raise ValueError(
            f"neurons.layout su2022: Su et al.'s layout rebuilds RoBERTa's embedding layer (a mask slot in the "
            f"prompt, zero position embeddings for it; Prompt-Transferability-1.0/model/modelling_roberta.py) and "
            f"applies to {list(SU2022_MODEL_TYPES)}; {type(backbone).__name__} is {model_type!r} "
            f"({family_of(backbone)}): use layout xlprompt"
        )
    if getattr(backbone.config, "position_embedding_type", "absolute") != "absolute":
        raise ValueError("neurons.layout su2022: needs absolute position embeddings (the rows it sets to zero)")


def _su2022_forward(
    backbone: PreTrainedModel, tokenizer, prompts: torch.Tensor, tokens: Callable[[list[int]], torch.Tensor]
) -> None:
    """Su et al.'s forward of prompts (P, L, d) fed alone (see the module's docstring): position 0 is the mask.

    ``inputs_embeds`` are their word embeddings ``[<mask>, P_2..P_L, <s>]`` (prompt slot 0 overwritten, so
    P_1 is never read); the position ids are theirs (padding_idx for the prompt rows, whose ids < 0 their
    ``create_position_ids_from_input_ids`` does not count; padding_idx + 1 for ``<s>``); a hook sets the
    prompt rows of the position embeddings to zero, as their ``position_embeddings[:,:100,:] = 0`` does;
    token type 0 everywhere. The rest is the model's own: LayerNorm (dropout off in eval mode; theirs has
    none), then the encoder. Their padding to max_len is masked out of attention, so it is left out here.
    """
    n_prompts, length, _ = prompts.shape
    device = prompts.device
    embeds = torch.cat([tokens([tokenizer.mask_token_id]), prompts[:, 1:], tokens([tokenizer.cls_token_id])], dim=1)
    pad = backbone.config.pad_token_id
    position_ids = torch.full((n_prompts, length + 1), pad, dtype=torch.long, device=device)
    position_ids[:, length] = pad + 1

    def zero_prompt_rows(_module, _args, output: torch.Tensor) -> torch.Tensor:  # (P, L + 1, d)
        output = output.clone()
        output[:, :length] = 0.0
        return output

    base: Any = backbone.base_model
    handle = base.embeddings.position_embeddings.register_forward_hook(zero_prompt_rows)
    try:
        base(
            inputs_embeds=embeds,
            attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long, device=device),
            position_ids=position_ids,
            token_type_ids=torch.zeros_like(position_ids),
        )
    finally:
        handle.remove()


@torch.no_grad()
def prompt_alone_activations(
    backbone: PreTrainedModel, tokenizer, prompts: torch.Tensor, layout: str = NeuronSettings.layout
) -> torch.Tensor:
    """Activations of P prompts (P, L, d), each fed alone: (P, n_layers, ffn) at the read position.

    All prompts go through the backbone in one batched forward pass. With ``layout`` xlprompt the
    input and the position follow each family's prompt layout as xlprompt trains prompts, with the
    special tokens the tokenizer puts around a text (:class:`xlprompt.data.encoding.SpecialTokens`):
    masked ``[P] <s> <mask> </s>`` (``[P] [CLS] [MASK] [SEP]`` for BERT), ordinary position ids, at the
    mask; causal ``</s> [P]`` (XGLM; BLOOM adds nothing) at the last position (the next token is the
    label); seq2seq ``[P] </s>`` into the encoder, at the decoder's first position. With ``layout``
    su2022 (XLM-R and RoBERTa; any other backbone is refused with a ValueError, see
    :func:`check_su2022`): ``[<mask>, P_2..P_L] <s>`` with zero position embeddings for the prompt rows,
    at position 0 (:func:`_su2022_forward`). Runs where the backbone sits (bf16 autocast on a GPU,
    xlprompt.models.compute); the activations come back as float32 on the CPU.
    """
    if layout not in NEURON_LAYOUTS:
        raise ValueError(f"neurons.layout must be one of {NEURON_LAYOUTS}, got {layout!r}")
    if layout == "su2022":
        check_su2022(backbone)
    n_prompts, length, _ = prompts.shape
    family = family_of(backbone)
    embed = backbone.get_input_embeddings()
    special = SpecialTokens.of(tokenizer)
    prefix, suffix = special.single_prefix, special.single_suffix
    compute = compute_of(backbone)
    device = compute.device
    prompts = prompts.to(device)

    def tokens(ids: list[int]) -> torch.Tensor:  # (P, len(ids), d)
        return embed(torch.tensor([ids], dtype=torch.long, device=device)).expand(n_prompts, -1, -1)

    def ones(embeds: torch.Tensor) -> torch.Tensor:  # the attention mask: every position is real
        return torch.ones(embeds.shape[:2], dtype=torch.long, device=device)

    backbone.eval()
    with record_ffn(backbone) as outputs, compute.autocast():
        if layout == "su2022":
            _su2022_forward(backbone, tokenizer, prompts, tokens)
            position = 0  # the mask slot, prompt slot 0
        elif family == "masked_lm":
            embeds = torch.cat([prompts, tokens([*prefix, tokenizer.mask_token_id, *suffix])], dim=1)
            backbone.base_model(inputs_embeds=embeds, attention_mask=ones(embeds))
            position = length + len(prefix)  # the mask slot
        elif family == "causal_lm":
            embeds = torch.cat([tokens(prefix), prompts], dim=1)  # (P, len(prefix) + L, d)
            backbone.base_model(inputs_embeds=embeds, attention_mask=ones(embeds))
            position = len(prefix) + length - 1  # the last position predicts the label word
        else:
            embeds = torch.cat([prompts, tokens(prefix + suffix)], dim=1)  # (P, L + 1, d)
            start = torch.full((n_prompts, 1), backbone.config.decoder_start_token_id, device=device)
            backbone(inputs_embeds=embeds, attention_mask=ones(embeds), decoder_input_ids=start)
            position = 0  # the decoder's first position predicts the label word
    return torch.stack([out[:, position].float() for out in outputs], dim=1).cpu()  # (P, n_layers, ffn)


@torch.no_grad()
def task_input_activations(model: PromptedLM, data: EncodedSplit, pad_id: int, batch_size: int = 64) -> torch.Tensor:
    """One prompted model's activations where it predicts the label, averaged over ``data``:
    (n_layers, ffn), on the CPU. The input is laid out as in training (:func:`xlprompt.models.prompting.lay_out`): the
    mask slot of a masked LM, the last position before the label word of a causal LM (prompt as
    prefix or suffix), the first decoder position of an encoder-decoder. Runs where the model sits
    (bf16 autocast on a GPU, xlprompt.models.compute); sums in float32."""
    model.eval()
    compute = compute_of(model)
    total: torch.Tensor | None = None
    prompts = model.prompt().unsqueeze(0) if model.prompt is not None else None
    for start in range(0, len(data), batch_size):
        batch = to_device(data.batch(range(start, min(start + batch_size, len(data))), pad_id), compute)
        with record_ffn(model.backbone) as outputs, compute.autocast():
            inputs = lay_out(
                model.backbone,
                prompts,
                batch["input_ids"],
                batch["attention_mask"],
                batch["mask_index"],
                batch.get("token_type_ids"),
                model.position,
            )
            run_backbone(model.backbone, inputs)
        rows = torch.arange(len(inputs.read_at), device=compute.device)
        at = torch.stack([out[rows, inputs.read_at].float() for out in outputs], dim=1)  # (B, layers, ffn)
        total = at.sum(0) if total is None else total + at.sum(0)
    if total is None:
        raise ValueError("task_input_activations: no examples to average over")
    return (total / len(data)).cpu()


def layer_windows(n_layers: int, window: int) -> list[tuple[int, int]]:
    """Consecutive layer ranges [start, stop) of ``window`` layers; the last may be shorter."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return [(start, min(start + window, n_layers)) for start in range(0, n_layers, window)]


def overlap(a: torch.Tensor, b: torch.Tensor, metric: str = "on") -> float:
    """ON (cosine of binary vectors) or Jaccard of two activation tensors; active = > 0."""
    x, y = (a.flatten() > 0), (b.flatten() > 0)
    both = (x & y).sum().item()
    if metric == "on":
        denominator = math.sqrt(x.sum().item() * y.sum().item())
    elif metric == "jaccard":
        denominator = (x | y).sum().item()
    else:
        raise ValueError(f"overlap metric must be 'on' or 'jaccard', got {metric!r}")
    return both / denominator if denominator else 0.0


def windowed_overlap(a: torch.Tensor, b: torch.Tensor, window: int, metric: str = "on") -> dict[str, float]:
    """Overlap over all layers ('all') and per window ('1-3', '4-6', ...; layers count from 1).

    a, b: (n_layers, ffn).
    """
    values = {"all": overlap(a, b, metric)}
    if window < a.shape[0]:
        for start, stop in layer_windows(a.shape[0], window):
            name = f"{start + 1}-{stop}" if stop - start > 1 else f"{start + 1}"
            values[name] = overlap(a[start:stop], b[start:stop], metric)
    return values


def top_neurons(activations: torch.Tensor, share: float) -> torch.Tensor:
    """Boolean mask (n_layers, ffn) of the ``share`` most activated neurons over all layers."""
    flat = activations.flatten()
    k = round(share * flat.numel())
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if k:
        # Ties go to lower indices, as in the LTP ticket: a stable sort makes it deterministic.
        mask[torch.sort(flat, descending=True, stable=True).indices[:k]] = True
    return mask.view_as(activations)
