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

from dataclasses import dataclass

from xlprompt.settings import PROMPT_POSITIONS

FAMILIES = ("masked_lm", "causal_lm", "seq2seq")

# config.model_type -> family (architectures xlprompt trains prompts for)
MODEL_TYPES = {
    "xlm-roberta": "masked_lm", "roberta": "masked_lm", "bert": "masked_lm",
    "xglm": "causal_lm", "bloom": "causal_lm",
    "mt5": "seq2seq", "t5": "seq2seq",
}


# Hub backbone id -> config.model_type, for the config checks (they run before any download).
# The same ids as the pinned revisions of xlprompt.hub_data.HUB_BACKBONES (a test keeps them equal).
HUB_MODEL_TYPES = {
    "FacebookAI/xlm-roberta-base": "xlm-roberta",
    "google-bert/bert-base-multilingual-cased": "bert",
    "bigscience/bloom-560m": "bloom",
    "facebook/xglm-564M": "xglm",
    "google/mt5-base": "mt5",
}
GENERATED_MODEL_TYPE = "xlm-roberta"  # the tiny backbone pretrain_backbone builds (xlprompt.backbone)


@dataclass(frozen=True)
class Feature:
    """Something only some families can do: the config key that asks for it, the stage that does it."""

    key: str  # e.g. "methods: ltp"
    stages: str
    families: tuple[str, ...]  # the families it works for
    why: str


# What only some families can do: nothing at present. Found by running each stage on tiny models
# of every architecture (tests/test_limits.py, tests/test_ltp.py): prompt training, evaluation,
# SPoT, the projector, ON (both modes), neuron masking and LTP (each family's own fine-tuning
# objective and attention/FFN weights, xlprompt.ltp) work for every family. A limit found later
# is listed here, and the config checks (xlprompt.checks.check_family, where the config key that
# asks for it is read) and its stages (:func:`require`) refuse it naming family and stage.
FEATURES: dict[str, Feature] = {}


def refusal(feature: str, model_type: str) -> str | None:
    """Why a backbone of ``model_type`` cannot do ``feature`` (a key of FEATURES); None: it can."""
    spec, family = FEATURES[feature], MODEL_TYPES.get(model_type)
    if family is None or family in spec.families:
        return None  # an unknown model type is refused by family_of when the stage loads it
    able = ", ".join(f"{f} ({', '.join(t for t, g in MODEL_TYPES.items() if g == f)})" for f in spec.families)
    return (f"{spec.key} is not available for backbone family {family} ({model_type}): {spec.stages}: "
            f"{spec.why}; available for {able}")


def require(feature: str, config) -> None:
    """Raise ValueError with :func:`refusal`'s message if the backbone cannot do ``feature``.

    ``config``: a model, its config or its model type. For stages, whose backbone may be a Hub
    model that the config checks could not know.
    """
    config = getattr(config, "config", config)
    message = refusal(feature, config if isinstance(config, str) else getattr(config, "model_type", None))
    if message is not None:
        raise ValueError(message)


def family_of(config) -> str:
    """The family of a transformers config (or of a model, through its ``.config``)."""
    config = getattr(config, "config", config)
    model_type = getattr(config, "model_type", None)
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model type {model_type!r} is not supported; supported: {sorted(MODEL_TYPES)} "
                         f"(families {', '.join(FAMILIES)})")
    return MODEL_TYPES[model_type]


def auto_class(family: str):
    """The transformers Auto class that loads a backbone of ``family`` with its LM head."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM

    return {"masked_lm": AutoModelForMaskedLM, "causal_lm": AutoModelForCausalLM,
            "seq2seq": AutoModelForSeq2SeqLM}[family]


# Where each family reads its prompt by default: causal LMs after the text (the SPT paper's layout).
DEFAULT_POSITION = {"masked_lm": "prefix", "causal_lm": "suffix", "seq2seq": "prefix"}


def prompt_position(family: str, requested: str = "") -> str:
    """The prompt's place in the input: ``requested`` (prefix | suffix), or the family's default.

    Only a causal LM can take its prompt after the text; masked LMs read the prompt before
    ``<s>`` (Su et al. 2022) and encoder-decoders before the encoder's text.
    """
    if not requested:
        return DEFAULT_POSITION[family]
    if requested not in PROMPT_POSITIONS:
        raise ValueError(f"prompt position must be one of {PROMPT_POSITIONS}, got {requested!r}")
    if requested == "suffix" and family != "causal_lm":
        raise ValueError(f"prompt position 'suffix' needs a causal LM (XGLM, BLOOM); a {family} backbone reads "
                         "its prompt first")
    return requested


def label_word_text(word: str, family: str) -> str:
    """How a label word is tokenised: a causal LM predicts it as the next word, after a space."""
    return f" {word}" if family == "causal_lm" else word
