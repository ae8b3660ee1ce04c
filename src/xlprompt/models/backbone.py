"""Loading a backbone: a Hugging Face folder (config, safetensors weights, tokenizer), never remote code.

Every family loads through its own Auto class with its LM head (:func:`xlprompt.models.families.auto_class`),
with eager attention, the faster one on a few CPU cores with padding masks; :func:`xlprompt.models.compute.place`
switches to SDPA on a GPU where the model supports it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from xlprompt.models.families import auto_class, family_of
from xlprompt.models.weights import weight_files

Loaded = tuple[PreTrainedModel, PreTrainedTokenizerBase]  # a backbone and its tokenizer, as loaded


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """A model folder's tokenizer (never remote code), with a pad token.

    Llama 3 and Mistral ship none. Padded positions are masked out of attention and never read, so any id
    serves: the end-of-sequence token, as PEFT's and TRL's examples set it.
    """
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_backbone(path: str | Path, dtype: torch.dtype = torch.float32) -> Loaded:
    """A backbone with its family's LM head, and its tokenizer, from a Hugging Face folder (never remote code);
    its weights in ``dtype`` (config ``backbone.dtype``), whatever type the checkpoint stores."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: not a model folder (no config.json)")
    weight_files(path)  # safetensors only, one file or shards, each complete
    family = family_of(AutoConfig.from_pretrained(path, trust_remote_code=False))
    tokenizer = load_tokenizer(path)
    model = auto_class(family).from_pretrained(
        path, trust_remote_code=False, use_safetensors=True, attn_implementation="eager", dtype=dtype
    )
    return model, tokenizer
