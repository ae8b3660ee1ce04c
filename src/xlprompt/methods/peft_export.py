"""Export a soft prompt in PEFT's prompt-tuning format, where PEFT's own forward reproduces it.

PEFT's prompt tuning puts the virtual tokens in front of the input and passes the rest to the
backbone unchanged. That is xlprompt's layout for masked LMs (read at ``<mask>``, L positions
later), for encoder-decoders (the prompt on the encoder side only:
``num_transformer_submodules: 1``) and for causal LMs trained with ``prompt.position: prefix``.
``peft.PeftModel.from_pretrained(backbone, folder)`` then loads it and PEFT's forward gives the
logits xlprompt reads; ``readout.json`` beside the adapter says where and which words.

Method ``deep_prompt``'s prefixes (xlprompt.methods.deep_prompt) are PEFT's prefix tuning where PEFT's forward
reproduces them (:func:`plan_prefix_export`): the artifact's ``prefix/`` is then where they are kept,
``PeftModel.from_pretrained(backbone, prefix/)`` loads them, and PEFT's forward gives xlprompt's logits.

Not expressible, so not exported (the reason goes into the artifact's meta.json): a causal LM's
prompt after the text (the SPT paper's layout), pairs for a model with token types (PEFT's
prompt tuning drops ``token_type_ids``: BERT would read the second text as the first), and
methods that change backbone weights (lora's adapter is saved in PEFT's LoRA format on its own,
``xlprompt.methods.adapters``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import save_file

from xlprompt.runtime.io import write_json
from xlprompt.runtime.methods import method_of

if TYPE_CHECKING:  # transformers for the hints only: importing it costs a second
    from transformers import PreTrainedModel

# The PEFT task type whose model class prepends the prompt and returns the backbone's LM logits.
TASK_TYPES = {"masked_lm": "FEATURE_EXTRACTION", "causal_lm": "CAUSAL_LM", "seq2seq": "SEQ_2_SEQ_LM"}
READ_AT = {
    "masked_lm": "logits[:, num_virtual_tokens + index of the mask token]",
    "causal_lm": "logits[:, num_virtual_tokens + number of real input tokens - 1] (the next token)",
    "seq2seq": "logits[:, 0] with decoder_input_ids = [[decoder_start_token_id]]",
}


@dataclass(frozen=True)
class PeftPlan:
    """Whether a prompt can be exported for PEFT, and if not, why."""

    family: str
    reason: str = ""  # why PEFT cannot reproduce it; empty when it can

    @property
    def exported(self) -> bool:
        return not self.reason

    @property
    def task_type(self) -> str | None:
        return TASK_TYPES[self.family] if self.exported else None

    def as_meta(self) -> dict:
        return (
            {"exported": True, "task_type": self.task_type}
            if self.exported
            else {"exported": False, "reason": self.reason}
        )


def plan_export(method: str, family: str, position: str, typed_pairs: bool) -> PeftPlan:
    """What PEFT can reproduce of a prompt: ``typed_pairs`` means the inputs carry token type 1."""
    tuner = method_of(method).peft
    if tuner == "lora":
        return PeftPlan(
            family,
            "method lora: its LoRA adapter is PEFT's own (lora/: PeftModel.from_pretrained(backbone, "
            "lora/)); PEFT cannot hold a soft prompt and a LoRA adapter in one model, so the prompt "
            "stays in prompt.safetensors (only a prompt on an unchanged backbone, spt, is PEFT "
            "prompt tuning)",
        )
    if tuner == "prefix_tuning":
        return PeftPlan(
            family,
            "method deep_prompt: its prefixes are PEFT prefix tuning, not prompt tuning "
            "(meta.json's peft_export says whether prefix/ holds them in PEFT's format)",
        )
    if tuner != "prompt_tuning":
        return PeftPlan(family, f"method {method}: only a prompt on an unchanged backbone (spt) is PEFT prompt tuning")
    if family == "causal_lm" and position == "suffix":
        return PeftPlan(
            family,
            "the prompt follows the text (prompt.position: suffix, the SPT paper's layout); PEFT "
            "puts virtual tokens first: train with prompt.position: prefix for a PEFT export",
        )
    if typed_pairs:
        return PeftPlan(
            family,
            "pairs with token types (BERT's second segment is type 1); PEFT's prompt tuning "
            "drops token_type_ids, so its forward would read the second text as type 0",
        )
    return PeftPlan(family)


def write_adapter(
    folder: Path,
    config,
    embeddings: torch.Tensor,
    read_at: str,
    label_words: dict[str, list[str]],
    verbalizer_ids: list[list[int]],
) -> None:
    """A PEFT prompt-learning adapter as PEFT saves one (adapter_config.json, adapter_model.safetensors
    with ``prompt_embeddings``), and readout.json: where and which label words xlprompt reads."""
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(folder))
    save_file({"prompt_embeddings": embeddings.detach().cpu().contiguous()}, folder / "adapter_model.safetensors")
    write_json(
        folder / "readout.json",
        {
            "read_at": read_at,
            "label_words": label_words,
            "verbalizer_token_ids": verbalizer_ids,
            "score": "the label word's logit (one token); a word of several tokens: the sum of its tokens' "
            "log-probabilities, teacher-forced",
        },
    )


def export_prompt_tuning(
    folder: Path,
    prompt: torch.Tensor,
    backbone: PreTrainedModel,
    plan: PeftPlan,
    label_words: dict[str, list[str]],
    verbalizer_ids: list[list[int]],
) -> None:
    """Write adapter_config.json, adapter_model.safetensors and readout.json for a (L, d) prompt.

    ``prompt`` is the effective prompt (after any reparameterization): what the backbone reads.
    """
    from peft import PromptTuningConfig  # imported here: only exports pay for it

    if not plan.exported:
        raise ValueError(f"not exportable for PEFT: {plan.reason}")
    cfg = backbone.config
    config = PromptTuningConfig(
        task_type=plan.task_type,
        num_virtual_tokens=prompt.shape[0],
        token_dim=prompt.shape[1],
        num_transformer_submodules=1,  # encoder-decoders: the prompt on the encoder side only
        num_attention_heads=cfg.num_attention_heads,
        num_layers=cfg.num_hidden_layers,
        base_model_name_or_path=getattr(cfg, "_name_or_path", None) or None,
    )
    write_adapter(folder, config, prompt, READ_AT[plan.family], label_words, verbalizer_ids)


PREFIX_FOLDER = "prefix"  # a deep_prompt artifact's PEFT prefix tuning adapter
PREFIX_READ_AT = {  # prefixes add no positions to the output: the text's own positions are read
    "masked_lm": "logits[:, index of the mask token]",
    "causal_lm": "logits[:, number of real input tokens - 1] (the next token)",
}


# Like plan_export, one reason per condition PEFT's forward cannot reproduce, checked in turn; the two plans
# share their shape (and the token-type condition) but not their reasons, which name each format's folder.
def plan_prefix_export(family: str, every_layer: bool, typed_pairs: bool) -> PeftPlan:
    """Whether PEFT's prefix tuning (its forward, ``past_key_values`` in every layer) reproduces a deep prompt."""
    if family == "seq2seq":
        return PeftPlan(
            family,
            "an encoder-decoder: PEFT's prefix tuning reaches only the decoder's self-attention "
            "(the T5 stack passes no cache to its encoder), xlprompt prefixes both stacks; the "
            "prefixes stay in prompt.safetensors",
        )
    if not every_layer:
        return PeftPlan(
            family,
            "deep_prompt.layers prefixes some layers, PEFT's prefix tuning every layer; the "
            "prefixes stay in prompt.safetensors",
        )
    if typed_pairs:
        return PeftPlan(
            family,
            "pairs with token types (BERT's second segment is type 1); PEFT's prompt-learning "
            "forward drops token_type_ids; the prefixes stay in prompt.safetensors",
        )
    return PeftPlan(family)


def export_prefix_tuning(
    folder: Path,
    prefixes: torch.Tensor,
    backbone: PreTrainedModel,
    plan: PeftPlan,
    layers: int,
    heads: int,
    label_words: dict[str, list[str]],
    verbalizer_ids: list[list[int]],
) -> None:
    """Write a deep prompt as PEFT prefix tuning: adapter_config.json, adapter_model.safetensors, readout.json.

    ``prefixes``: (L, layers x 2 x width), PEFT's layout, after any reparameterization (so the config
    says ``prefix_projection: false``: PEFT needs no MLP to use them, as after its own save); ``layers``
    and ``heads`` are the backbone's (PEFT reads XGLM's head count from no config key of its own).
    """
    from peft import PrefixTuningConfig

    if not plan.exported:
        raise ValueError(f"not exportable for PEFT: {plan.reason}")
    length, flat = prefixes.shape
    width = flat // (2 * layers)
    config = PrefixTuningConfig(
        task_type=plan.task_type,
        num_virtual_tokens=length,
        token_dim=width,
        num_transformer_submodules=1,
        num_attention_heads=heads,
        num_layers=layers,
        prefix_projection=False,
        base_model_name_or_path=getattr(backbone.config, "_name_or_path", None) or None,
    )
    write_adapter(folder, config, prefixes, PREFIX_READ_AT[plan.family], label_words, verbalizer_ids)
