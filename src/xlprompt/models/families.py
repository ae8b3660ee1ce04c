"""Model families behind one prompt interface, chosen from the backbone's config.

- ``masked_lm`` (XLM-R, mBERT): ``[P] <s> text </s> </s> pair <mask> </s>``, the label word read
  at ``<mask>`` (Su et al. 2022);
- ``causal_lm`` (XGLM, BLOOM): ``text [pair] [P]``, the prompt as a suffix and the label word
  predicted as the next token at the last prompt position (Philippy et al. 2024); with prompt
  position ``prefix``, ``[P] text [pair]`` (PEFT's layout), predicted after the last text token;
- ``seq2seq`` (mT5): ``[P] text [pair]`` into the encoder, the label word as the first decoder
  token.

Every family returns logits of the label words; training and evaluation use the same ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xlprompt.runtime.settings import FAMILIES, PROMPT_POSITIONS

if TYPE_CHECKING:  # torch and transformers for the hints only: importing them costs a second
    import torch
    from transformers import PreTrainedModel


# config.model_type -> family (architectures xlprompt trains prompts for)
MODEL_TYPES = {
    "xlm-roberta": "masked_lm",
    "roberta": "masked_lm",
    "bert": "masked_lm",
    "xglm": "causal_lm",
    "bloom": "causal_lm",
    "mt5": "seq2seq",
    "t5": "seq2seq",
}


# Hub backbone id -> config.model_type, for the config checks (they run before any download).
# The same ids as the pinned revisions of xlprompt.data.hub.HUB_BACKBONES (a test keeps them equal).
HUB_MODEL_TYPES = {
    "FacebookAI/xlm-roberta-base": "xlm-roberta",
    "google-bert/bert-base-multilingual-cased": "bert",
    "bigscience/bloom-560m": "bloom",
    "facebook/xglm-564M": "xglm",
    "google/mt5-base": "mt5",
}
GENERATED_MODEL_TYPE = "xlm-roberta"  # the tiny backbone pretrain_backbone builds (xlprompt.models.tiny)

# Method lora: the linear modules of each model type's transformer layers (the names PEFT's
# target_modules match, last part of the module's name), and the default targets among them:
# the attention's query and value projections (Hu et al. 2022; PEFT's defaults where it has one,
# BLOOM's fused query_key_value). LM heads and embeddings are not targets.
LORA_MODULES = {
    "xlm-roberta": ("query", "key", "value", "dense"),
    "roberta": ("query", "key", "value", "dense"),
    "bert": ("query", "key", "value", "dense"),
    "xglm": ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
    "bloom": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    "mt5": ("q", "k", "v", "o", "wi_0", "wi_1", "wo"),
    "t5": ("q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"),
}
LORA_TARGETS = {
    "xlm-roberta": ("query", "value"),
    "roberta": ("query", "value"),
    "bert": ("query", "value"),
    "xglm": ("q_proj", "v_proj"),
    "bloom": ("query_key_value",),
    "mt5": ("q", "v"),
    "t5": ("q", "v"),
}
# Method bitfit: model types without bias terms (nothing would train), and why.
NO_BIASES = {
    "mt5": "mT5's attention, feed-forward and layer norms have no bias terms",
    "t5": "T5's attention, feed-forward and layer norms have no bias terms",
}

# Method deep_prompt: how each model type's self-attention takes a key/value prefix (xlprompt.methods.deep_prompt):
# which modules, and the kind of position information the prefix must be placed in. A model type without
# an entry cannot train deep_prompt (the config checks refuse it, naming why).
PREFIX_ATTENTION = {
    "xlm-roberta": "bert",
    "roberta": "bert",
    "bert": "bert",  # encoder.layer[i].attention.self; absolute positions
    "xglm": "xglm",  # model.layers[i].self_attn; sinusoidal positions
    "bloom": "bloom",  # transformer.h[i].self_attention; ALiBi
    "mt5": "t5",
    "t5": "t5",  # encoder, then decoder block[i].layer[0].SelfAttention; relative position bias
}
# Layers of the pinned Hub backbones that take a prefix (mT5: its encoder's blocks, then its decoder's), for
# the config checks of deep_prompt.layers before any download.
HUB_PREFIX_LAYERS = {
    "FacebookAI/xlm-roberta-base": 12,
    "google-bert/bert-base-multilingual-cased": 12,
    "bigscience/bloom-560m": 24,
    "facebook/xglm-564M": 24,
    "google/mt5-base": 24,
}


def family_of(config) -> str:
    """The family of a transformers config (or of a model, through its ``.config``)."""
    config = getattr(config, "config", config)
    model_type = getattr(config, "model_type", None)
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"model type {model_type!r} is not supported; supported: {sorted(MODEL_TYPES)} "
            f"(families {', '.join(FAMILIES)})"
        )
    return MODEL_TYPES[model_type]


def auto_class(family: str):
    """The transformers Auto class that loads a backbone of ``family`` with its LM head."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM

    return {"masked_lm": AutoModelForMaskedLM, "causal_lm": AutoModelForCausalLM, "seq2seq": AutoModelForSeq2SeqLM}[
        family
    ]


# Where each family reads its prompt by default: causal LMs after the text (the SPT paper's layout).
DEFAULT_POSITION = {"masked_lm": "prefix", "causal_lm": "suffix", "seq2seq": "prefix"}


def prompt_position(family: str, requested: str = "", model_type: str = "") -> str:
    """The prompt's place in the input: ``requested`` (prefix | suffix), or the family's default.

    Only a causal LM can take its prompt after the text; masked LMs read the prompt before
    ``<s>`` (Su et al. 2022) and encoder-decoders before the encoder's text. ``model_type``
    only names the backbone in the error.
    """
    if not requested:
        return DEFAULT_POSITION[family]
    if requested not in PROMPT_POSITIONS:
        raise ValueError(f"prompt position must be one of {PROMPT_POSITIONS}, got {requested!r}")
    if requested == "suffix" and family != "causal_lm":
        named = f" ({model_type})" if model_type else ""
        raise ValueError(
            f"'suffix' needs a causal LM (XGLM, BLOOM); backbone family {family}{named} reads its prompt first"
        )
    return requested


def label_word_text(word: str, family: str) -> str:
    """How a label word is tokenised: a causal LM predicts it as the next word, after a space."""
    return f" {word}" if family == "causal_lm" else word


def lm_head_of(model: torch.nn.Module) -> torch.nn.Module:
    """The masked-LM output head (hidden -> vocabulary logits) of an encoder masked LM."""
    for name in ("lm_head", "cls"):  # XLM-R / RoBERTa, BERT
        if hasattr(model, name):
            return getattr(model, name)
    raise TypeError(f"{type(model).__name__} has no known masked-LM head (lm_head or cls)")


def input_width(backbone: PreTrainedModel) -> int:
    """The width d of the vectors the backbone reads (its input embeddings'), which a prompt's rows have."""
    embeddings: Any = backbone.get_input_embeddings()  # an nn.Embedding (XGLM's scaled subclass included)
    return int(embeddings.weight.shape[1])


def embedding_scale(backbone: PreTrainedModel) -> float:
    """What the backbone multiplies its token embeddings by before the first layer: sqrt(d) for XGLM
    (transformers 5 scales inside ``XGLMScaledWordEmbedding``, its ``embed_scale``), 1 for the others."""
    embeddings: Any = backbone.get_input_embeddings()
    return float(getattr(embeddings, "embed_scale", 1.0))
