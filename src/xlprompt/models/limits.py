"""Length limits of a loaded backbone, checked before compute (importable without torch).

A prompted input is ``prompt_length`` soft tokens plus up to ``max_length`` text tokens (special
tokens included; xlprompt.data.encoding cuts the text to fit). How many positions a model has
room for depends on how it encodes positions (transformers 5 sources, models/*/modeling_*.py):

- XLM-R / RoBERTa: a learned table of ``max_position_embeddings`` rows whose first
  ``padding_idx + 1`` are never used by a real token (positions start after the padding
  index), so ``max_position_embeddings - padding_idx - 1`` tokens fit (514 - 2 = 512 for
  xlm-roberta-base); one more and the embedding lookup fails with an index error;
- BERT: a learned table read from position 0: ``max_position_embeddings`` tokens;
- XGLM: sinusoidal positions with an offset of 2 inside the module, which regrows its table for
  longer inputs instead of failing; the model was trained on ``max_position_embeddings``
  positions, so that is the limit here (beyond it the numbers would silently mean little);
- Llama, Mistral, Qwen, Gemma: rotary positions, computed for any length; the model was trained on
  ``max_position_embeddings`` positions, the limit here as for XGLM;
- BLOOM: ALiBi attention biases, no position table: no limit;
- mT5 / T5: relative position buckets, no position table: no limit.
"""

from __future__ import annotations

from pathlib import Path

from xlprompt.models.families import architecture_of

# Tokens per document in LTP's masked-LM fine-tuning (finetune_mlm --max-length).
FINETUNE_MAX_LENGTH = 64


def position_limit(config) -> int | None:
    """Most tokens (prompt included) one input may have in a model with this config; None: no limit.

    ``config``: a transformers config, or a model (its ``.config`` is read).
    """
    config = getattr(config, "config", config)
    positions = architecture_of(config).positions  # raises for a model type xlprompt does not know
    if positions == "table_after_padding":
        return config.max_position_embeddings - (config.pad_token_id + 1)
    if positions in ("table", "trained"):
        return config.max_position_embeddings
    return None


def check_positions(config, max_length: int, prompt_length: int) -> None:
    """Raise ValueError if ``prompt_length`` + ``max_length`` tokens do not fit the model's positions."""
    limit = position_limit(config)
    if limit is not None and prompt_length + max_length > limit:
        config = getattr(config, "config", config)
        raise ValueError(
            f"max_length {max_length} + prompt length {prompt_length} = {prompt_length + max_length} tokens, more "
            f"than the {limit} positions of this {config.model_type} backbone (max_position_embeddings "
            f"{config.max_position_embeddings}); lower max_length to at most {limit - prompt_length} or use a "
            "shorter prompt"
        )


def check_folder_positions(folder: str | Path, max_length: int, prompt_length: int) -> None:
    """:func:`check_positions` for a model folder, reading only its config (before any weights load).

    A folder without config.json is left to the loader, which says what is missing.
    """
    if not (Path(folder) / "config.json").exists():
        return
    from transformers import AutoConfig

    check_positions(AutoConfig.from_pretrained(folder, trust_remote_code=False), max_length, prompt_length)
