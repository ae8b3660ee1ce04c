"""Model families behind one prompt interface, chosen from the backbone's config.

- ``masked_lm`` (XLM-R, mBERT): ``[P] <s> text </s> </s> pair <mask> </s>``, the label word read
  at ``<mask>`` (Su et al. 2022);
- ``causal_lm`` (XGLM, BLOOM; Llama, Mistral, Qwen2/3, Gemma 2/3): ``text [pair] [P]``, the prompt as a
  suffix and the label word predicted as the next token at the last prompt position (Philippy et al. 2024); with prompt
  position ``prefix``, ``[P] text [pair]`` (PEFT's layout), predicted after the last text token;
- ``seq2seq`` (mT5): ``[P] text [pair]`` into the encoder, the label word as the first decoder
  token.

Every family returns logits of the label words; training and evaluation use the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xlprompt.runtime.settings import FAMILIES, PROMPT_POSITIONS

if TYPE_CHECKING:  # torch and transformers for the hints only: importing them costs a second
    import torch
    from transformers import PreTrainedModel


# How an architecture's positions limit one input (xlprompt.models.limits.position_limit): a learned table whose
# first padding_idx + 1 rows no token uses (XLM-R, RoBERTa); a learned table from position 0 (BERT); positions
# the model was trained on, beyond which it computes but means little (XGLM's sinusoids, rotary positions); none (ALiBi,
# relative position buckets).
POSITION_KINDS = ("table_after_padding", "table", "trained", "none")
# Where ON reads a layer's FFN neurons on the module the record names: its output (an activation module:
# act(W_in x)), or its input (a gated MLP's down projection, whose input act(gate x) * up x holds one value
# per neuron, each the weight of that neuron's column of down_proj).
FFN_READS = ("output", "input")
EMBEDDING_SCALES = ("1", "sqrt(d)")


@dataclass(frozen=True)
class Architecture:
    """What xlprompt knows of one model type (``config.model_type``): one record per architecture, so that
    adding one is one entry here plus its stand-in test (tests/tiny_models.py)."""

    model_type: str
    family: str  # FAMILIES: which prompt layout and LM head it takes
    # Method lora: the linear modules of its transformer layers (the last part of the module's name, as PEFT's
    # target_modules match it; LM heads and embeddings are not targets) and the default targets among them:
    # the attention's query and value projections (Hu et al. 2022; PEFT's defaults where it has one).
    lora_modules: tuple[str, ...]
    lora_targets: tuple[str, ...]
    # Method deep_prompt: how its self-attention takes a key/value prefix (xlprompt.methods.deep_prompt); None:
    # it takes none here (the config checks refuse deep_prompt, naming why).
    prefix_attention: str | None
    positions: str  # POSITION_KINDS
    # ON (xlprompt.analysis.neurons.ffn_modules): per layer, the module whose output is the FFN activation
    # after the non-linearity, as (the layer list under the base model, the module under each layer);
    # "-1" indexes a list.
    ffn_activation: tuple[str, str]
    # The special tokens around one text and around a pair (A, B), as the tokenizer of the pinned Hub checkpoint
    # (HUB_MODEL_TYPES) lays them out: xlprompt feeds them as they are (training.add_special_tokens); the stand-ins
    # (tests/tiny_models.py) are tested to produce exactly these.
    tokens: tuple[str, str]
    no_biases: str = ""  # method bitfit: why it has no bias terms to train ("": it has them)
    ffn_reads: str = "output"  # FFN_READS
    # What the model multiplies its token embeddings by before the first layer (xlprompt.models.families.
    # embedding_scale reads it off the module; prompt.space model puts a prompt where that puts tokens).
    embedding_scale: str = "1"
    su2022: bool = False  # Su et al.'s prompt-alone layout (neurons.layout su2022) rebuilds this model's embeddings

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.model_type}: family must be one of {FAMILIES}, got {self.family!r}")
        if self.positions not in POSITION_KINDS:
            raise ValueError(f"{self.model_type}: positions must be one of {POSITION_KINDS}, got {self.positions!r}")
        if self.ffn_reads not in FFN_READS:
            raise ValueError(f"{self.model_type}: ffn_reads must be one of {FFN_READS}, got {self.ffn_reads!r}")
        if self.embedding_scale not in EMBEDDING_SCALES:
            raise ValueError(f"{self.model_type}: embedding_scale must be one of {EMBEDDING_SCALES}")
        if not set(self.lora_targets) <= set(self.lora_modules):
            raise ValueError(f"{self.model_type}: LoRA targets {self.lora_targets} outside {self.lora_modules}")


_ENCODER_LORA = ("query", "key", "value", "dense")
_ENCODER_QV = ("query", "value")
_ENCODER_FFN = ("encoder.layer", "intermediate")  # act(dense(x))
_T5_FFN = ("decoder.block", "layer.-1.DenseReluDense.act")  # Su et al. hook the decoder; mT5: act(wi_0 x)
_ROBERTA_TOKENS = ("<s> A </s>", "<s> A </s> </s> B </s>")
_T5_TOKENS = ("A </s>", "A </s> B </s>")
# Today's decoder LLMs: a gated MLP, down_proj(act(gate_proj x) * up_proj x); rotary positions; grouped-query
# attention. LoRA's default targets are PEFT's for these model types (q_proj, v_proj).
_DECODER_LORA = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_DECODER_QV = ("q_proj", "v_proj")
_GATED_FFN = ("layers", "mlp.down_proj")  # read at its input (ffn_reads), one value per neuron


_GEMMA_TOKENS = ("<bos> A", "<bos> A <bos> B")


def _decoder_llm(
    model_type: str, tokens: tuple[str, str], no_biases: str = "", embedding_scale: str = "1"
) -> Architecture:
    """A decoder LLM's record: all share the layout, LoRA modules and gated MLP; they differ in tokens, biases
    and embedding scale."""
    return Architecture(
        model_type,
        "causal_lm",
        _DECODER_LORA,
        _DECODER_QV,
        "decoder_llm",  # model.layers[i].self_attn; rotary positions, grouped-query attention
        "trained",
        _GATED_FFN,
        tokens,
        no_biases=no_biases,
        ffn_reads="input",
        embedding_scale=embedding_scale,
    )


def _no_biases(name: str) -> str:
    return f"{name}'s attention and MLP have no bias terms (attention_bias, mlp_bias false) and RMSNorm has none"


ARCHITECTURES = (
    # encoder.layer[i].attention.self takes the prefix; absolute positions
    Architecture(
        "xlm-roberta",
        "masked_lm",
        _ENCODER_LORA,
        _ENCODER_QV,
        "bert",
        "table_after_padding",
        _ENCODER_FFN,
        _ROBERTA_TOKENS,
        su2022=True,
    ),
    Architecture(
        "roberta",
        "masked_lm",
        _ENCODER_LORA,
        _ENCODER_QV,
        "bert",
        "table_after_padding",
        _ENCODER_FFN,
        _ROBERTA_TOKENS,
        su2022=True,
    ),
    Architecture(
        "bert",
        "masked_lm",
        _ENCODER_LORA,
        _ENCODER_QV,
        "bert",
        "table",
        _ENCODER_FFN,
        ("[CLS] A [SEP]", "[CLS] A [SEP] B [SEP]"),
    ),
    Architecture(
        "xglm",
        "causal_lm",
        ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
        ("q_proj", "v_proj"),
        "xglm",  # model.layers[i].self_attn; sinusoidal positions
        "trained",
        ("layers", "activation_fn"),  # applied to fc1
        ("</s> A", "</s> A </s> </s> B"),
        embedding_scale="sqrt(d)",
    ),
    Architecture(
        "bloom",
        "causal_lm",
        ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
        ("query_key_value",),  # fused: PEFT's default
        "bloom",  # transformer.h[i].self_attention; ALiBi
        "none",
        ("h", "mlp.gelu_impl"),
        ("A", "A B"),  # no special tokens at all
    ),
    Architecture(
        "mt5",
        "seq2seq",
        ("q", "k", "v", "o", "wi_0", "wi_1", "wo"),
        ("q", "v"),
        "t5",  # encoder, then decoder block[i].layer[0].SelfAttention; relative position bias
        "none",
        _T5_FFN,
        _T5_TOKENS,
        no_biases="mT5's attention, feed-forward and layer norms have no bias terms",
    ),
    Architecture(
        "t5",
        "seq2seq",
        ("q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"),
        ("q", "v"),
        "t5",
        "none",
        _T5_FFN,
        _T5_TOKENS,
        no_biases="T5's attention, feed-forward and layer norms have no bias terms",
    ),
    # Llama 3's tokenizer (byte-level BPE) starts every text with <|begin_of_text|>, a pair's second too.
    _decoder_llm(
        "llama", ("<|begin_of_text|> A", "<|begin_of_text|> A <|begin_of_text|> B"), no_biases=_no_biases("Llama")
    ),
    # Mistral's (SentencePiece-style BPE with byte fallback): <s> first, as Llama 2's.
    _decoder_llm("mistral", ("<s> A", "<s> A <s> B"), no_biases=_no_biases("Mistral")),
    # Qwen's byte-level BPE adds no BOS (no special tokens at all); Qwen2 has biases in q, k and v.
    _decoder_llm("qwen2", ("A", "A B")),
    _decoder_llm(
        "qwen3",
        ("A", "A B"),
        no_biases="Qwen3's attention (with q and k RMSNorm instead of Qwen2's biases) and MLP have no bias terms",
    ),
    # Gemma needs its <bos> (the model degrades without it) and scales token embeddings by sqrt(d); its MLP
    # is GeGLU (gelu_pytorch_tanh on the gate). gemma3_text: Gemma 3's text-only models (1B; Gemma3ForCausalLM).
    _decoder_llm("gemma2", _GEMMA_TOKENS, no_biases=_no_biases("Gemma 2"), embedding_scale="sqrt(d)"),
    _decoder_llm("gemma3_text", _GEMMA_TOKENS, no_biases=_no_biases("Gemma 3"), embedding_scale="sqrt(d)"),
)
ARCHITECTURES_BY_TYPE = {arch.model_type: arch for arch in ARCHITECTURES}

# Views of the records, by model type, for the code that asks one question of them.
MODEL_TYPES = {arch.model_type: arch.family for arch in ARCHITECTURES}  # the architectures xlprompt trains
LORA_MODULES = {arch.model_type: arch.lora_modules for arch in ARCHITECTURES}
LORA_TARGETS = {arch.model_type: arch.lora_targets for arch in ARCHITECTURES}
NO_BIASES = {arch.model_type: arch.no_biases for arch in ARCHITECTURES if arch.no_biases}
PREFIX_ATTENTION = {arch.model_type: arch.prefix_attention for arch in ARCHITECTURES if arch.prefix_attention}
SU2022_MODEL_TYPES = tuple(arch.model_type for arch in ARCHITECTURES if arch.su2022)

# Hub backbone id -> config.model_type, for the config checks (they run before any download).
# The same ids as the pinned revisions of xlprompt.data.hub.HUB_BACKBONES (a test keeps them equal).
HUB_MODEL_TYPES = {
    "FacebookAI/xlm-roberta-base": "xlm-roberta",
    "google-bert/bert-base-multilingual-cased": "bert",
    "bigscience/bloom-560m": "bloom",
    "facebook/xglm-564M": "xglm",
    "google/mt5-base": "mt5",
    "Qwen/Qwen2.5-0.5B": "qwen2",
    "Qwen/Qwen2.5-1.5B": "qwen2",
    "Qwen/Qwen3-0.6B-Base": "qwen3",
    "meta-llama/Llama-3.2-1B": "llama",
    "meta-llama/Llama-3.1-8B": "llama",
    "google/gemma-2-2b": "gemma2",
    "google/gemma-3-1b-pt": "gemma3_text",
    "mistralai/Mistral-7B-v0.3": "mistral",
}
GENERATED_MODEL_TYPE = "xlm-roberta"  # the tiny backbone pretrain_backbone builds (xlprompt.models.tiny)

# Layers of the pinned Hub backbones (mT5: its encoder's blocks, then its decoder's), for the config checks of
# deep_prompt.layers before any download (config.json's num_hidden_layers; docs/hub-sources.md).
HUB_PREFIX_LAYERS = {
    "FacebookAI/xlm-roberta-base": 12,
    "google-bert/bert-base-multilingual-cased": 12,
    "bigscience/bloom-560m": 24,
    "facebook/xglm-564M": 24,
    "google/mt5-base": 24,
    "Qwen/Qwen2.5-0.5B": 24,
    "Qwen/Qwen2.5-1.5B": 28,
    "Qwen/Qwen3-0.6B-Base": 28,
    "meta-llama/Llama-3.2-1B": 16,
    "meta-llama/Llama-3.1-8B": 32,
    "google/gemma-2-2b": 26,
    "google/gemma-3-1b-pt": 26,
    "mistralai/Mistral-7B-v0.3": 32,
}

# Parameters of the pinned Hub backbones, in millions (the model cards'; docs/hub-sources.md), for the
# memory the workflow's jobs claim before any download (xlprompt.models.memory.job_memory_mb).
HUB_PARAMETERS_M = {
    "FacebookAI/xlm-roberta-base": 278,
    "google-bert/bert-base-multilingual-cased": 179,
    "bigscience/bloom-560m": 559,
    "facebook/xglm-564M": 564,
    "google/mt5-base": 582,
    "Qwen/Qwen2.5-0.5B": 494,
    "Qwen/Qwen2.5-1.5B": 1544,
    "Qwen/Qwen3-0.6B-Base": 596,
    "meta-llama/Llama-3.2-1B": 1236,
    "meta-llama/Llama-3.1-8B": 8030,
    "google/gemma-2-2b": 2614,
    "google/gemma-3-1b-pt": 1000,
    "mistralai/Mistral-7B-v0.3": 7248,
}


def architecture_of(config) -> Architecture:
    """The record of a transformers config's model type (or of a model's, through its ``.config``)."""
    config = getattr(config, "config", config)
    model_type = getattr(config, "model_type", None)
    if model_type not in ARCHITECTURES_BY_TYPE:
        raise ValueError(
            f"model type {model_type!r} is not supported; supported: {sorted(ARCHITECTURES_BY_TYPE)} "
            f"(families {', '.join(FAMILIES)})"
        )
    return ARCHITECTURES_BY_TYPE[model_type]


def family_of(config) -> str:
    """The family of a transformers config (or of a model, through its ``.config``)."""
    return architecture_of(config).family


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
    """What the backbone multiplies its token embeddings by before the first layer: sqrt(d) for XGLM and
    Gemma (transformers 5 scales inside ``XGLMScaledWordEmbedding`` / ``Gemma2ScaledWordEmbedding``, their
    ``embed_scale``), 1 for the others (the record's ``embedding_scale`` says which)."""
    embeddings: Any = backbone.get_input_embeddings()
    return float(getattr(embeddings, "embed_scale", 1.0))
