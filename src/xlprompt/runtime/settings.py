"""The settings that describe one run of a stage, importable without torch.

The workflow's config checks (``xlprompt.config.checks``, run by Snakemake while it parses the
Snakefile) read the defaults and allowed values here; keeping torch and transformers out of
this module keeps ``snakemake -n`` and a nothing-to-do run fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xlprompt.runtime.methods import METHOD_LIST, METHODS_BY_NAME, Method, is_ltp, method_of

INITS = ("uniform", "vocab", "label_words")  # how a fresh prompt starts (xlprompt.models.prompting.init_prompt)
METHODS = tuple(METHODS_BY_NAME)  # xlprompt.runtime.methods: one record per method
# Methods that train backbone weights next to the prompt, and may train without one (prompt_length 0).
PROMPT_OPTIONAL = tuple(method.name for method in METHOD_LIST if method.prompt == "optional")
PROMPT_INITS = (*INITS, "source")  # source: copied from a trained prompt (SPoT)
PROMPT_POSITIONS = ("prefix", "suffix")  # where a causal LM reads its prompt (xlprompt.models.families)
# The model families; labels.json gives verbalizer words for each (xlprompt.models.families: which backbone is which).
FAMILIES = ("masked_lm", "causal_lm", "seq2seq")
SELECTIONS = ("few_shot", "full_validation", "last_step")  # how the kept prompt is chosen
# label_words: cross-entropy over the label words (the verbalizer's softmax); vocabulary:
# -log p(label word) under the whole vocabulary (the SPT authors' training loss).
LOSSES = ("label_words", "vocabulary")
# Where a prompt's parameters live (prompt.space): model, the vectors the backbone reads, as inputs_embeds;
# raw, the space of the embedding table before the backbone scales it (XGLM and Gemma multiply token
# embeddings by sqrt(d)): the prompt enters multiplied by that scale, as in the SPT authors' code, which
# overwrote the prompt rows of the unscaled lookup (fredxlpy/cross_lingual_prompt_tuning, src/prompt.py).
PROMPT_SPACES = ("model", "raw")
# The backbone's dropout while a prompt trains (training.dropout): always (the default: train mode for every
# method, as HF Trainer runs every model, the SPT authors' included, so that methods differ only in what they
# train) | never (eval mode) | when_training_backbone (train mode only for the methods that change backbone
# weights). Validation and evaluation: eval mode.
DROPOUT_MODES = ("always", "never", "when_training_backbone")
# Where init vocab's most frequent tokens come from (prompt.vocab_source): task, the training text's own
# counts (sampled with replacement); model, the backbone vocabulary's own order, as Lester et al. and SPoT
# draw them (google-research/prompt-tuning, prompts.from_sample_of_embeddings with population_size 5000:
# the first 5,000 ids of T5's frequency-ordered SentencePiece vocabulary, without replacement).
VOCAB_SOURCES = ("task", "model")
# What training.max_length counts (xlprompt.data.encoding.text_length): text, the text and its special tokens,
# the prompt on top; total, everything one input holds, the prompt included, as the SPT authors tokenize
# (fredxlpy/cross_lingual_prompt_tuning, src/preprocessing.py: text against `[PROMPT]*L </s>`, max_length 128,
# truncation only_first): the text gets what the prompt leaves.
LENGTH_BUDGETS = ("text", "total")
# Frozen-backbone prompts (spt, untrained, no_prompt) of one backbone, prompt length and task train
# together in one job, at most this many (xlprompt.methods.training.train_prompts; config training.group_size).
GROUP_SIZE = 8


# CPU threads of the pretraining job and of LTP's fine-tuning (config backbone.threads), capped at --cores.
PRETRAIN_THREADS = 2
# The backbone's weights in the stages that run it (config backbone.dtype; xlprompt.models.compute.DTYPES).
BACKBONE_DTYPE = "float32"


class ConfigError(ValueError):
    """A config value that is not allowed; the message says which and why."""


@dataclass(frozen=True)
class RunSettings:
    """The experiment config's top-level settings that are not a section of their own."""

    threads: int = 1  # CPU threads of each training and evaluation job (such jobs run side by side)


@dataclass(frozen=True)
class MLMSettings:
    """How a language model trains: pretraining (masked LM) and LTP's fine-tuning (every objective)."""

    steps: int = 1000  # training steps
    batch_size: int = 128  # documents per step
    lr: float = 2e-3  # AdamW's learning rate (10% warm-up, then linear decay)
    weight_decay: float = 0.01  # AdamW's weight decay
    mask_prob: float = 0.15  # share of the tokens masked (masked LM) or corrupted (span corruption)
    focus_mask_prob: float = 0.4  # masking probability of the focus words (the world's topic names)
    mean_span_length: float = 3.0  # span corruption (mT5): mean corrupted span; mask_prob is the corrupted share
    seed: int = 0  # masking, data order and initial weights follow from it
    checkpoint_every: int = 200  # a resumable checkpoint every this many steps

    def __post_init__(self) -> None:
        if self.mean_span_length < 1:
            raise ValueError(
                f"mean_span_length (a corrupted span's mean length in tokens) must be >= 1, got {self.mean_span_length}"
            )


# LTP's fine-tuning (theta_MLM; config ltp.finetune): a fine-tuning of a trained backbone, not a
# pretraining, so fewer steps at a fine-tuning learning rate, and topic names masked like any word.
LTP_FINETUNE = MLMSettings(steps=200, lr=1e-4, focus_mask_prob=0.15)
LTP_FINETUNE_LANGUAGES = ("en",)  # whose unlabeled text it reads (config ltp.finetune.languages)


@dataclass(frozen=True)
class SpotSettings:
    """Soft prompt transfer's settings besides its training (config block ``spot:``, xlprompt.analysis.spot)."""

    random_init: str = "vocab"  # the `random` baseline's init (vocab: as prompt.vocab_source draws)
    embedding_step: int = 100  # a prompt's task embedding is the prompt at this step (SPoT: 10K of 262K)


# How mode alone lays a prompt out (neurons.layout; xlprompt.analysis.neurons.prompt_alone_activations):
# xlprompt, as xlprompt trains prompts (masked LMs: [P] <s> <mask> </s>, ordinary positions, read at <mask>);
# su2022, the authors' (thunlp/Prompt-Transferability, Prompt-Transferability-1.0/model/modelling_roberta.py,
# RobertaEmbeddings.forward): <mask>'s embedding in prompt slot 0, the prompt then <s>, the prompt rows'
# position embeddings zero, read at position 0. Their mechanism is RoBERTa's embedding (the model types whose
# record says su2022, xlprompt.models.families.SU2022_MODEL_TYPES).
NEURON_LAYOUTS = ("xlprompt", "su2022")


@dataclass(frozen=True)
class NeuronSettings:
    """Activated-neuron overlap (ON, Su et al. 2022; config block ``neurons:``, xlprompt.analysis.neurons)."""

    window: int = 3  # layers per window of the overlap (Su et al.: 3 of RoBERTa-base's 12)
    mode: str = "alone"  # alone: the prompt with the special tokens only, no task text; task: over inputs
    examples: int = 200  # mode task: validation examples to average over
    mask_share: float = 0.2  # masking check: share of a prompt's most activated neurons switched off
    layout: str = "xlprompt"  # mode alone: the prompt's input and read position, xlprompt | su2022 (NEURON_LAYOUTS)

    def __post_init__(self) -> None:
        if self.mode not in ("alone", "task"):
            raise ValueError(f"neurons mode must be alone or task, got {self.mode!r}")
        if self.layout not in NEURON_LAYOUTS:
            raise ValueError(f"neurons layout must be one of {NEURON_LAYOUTS}, got {self.layout!r}")
        if self.layout != "xlprompt" and self.mode != "alone":
            raise ValueError(
                f"neurons layout {self.layout} lays out a prompt fed alone; mode {self.mode} reads it on task inputs "
                "as it trained (use layout xlprompt)"
            )


def trains_backbone(method: str) -> bool:
    """Whether ``method`` changes backbone weights."""
    return method_of(method).trains_backbone


def trains_alone(method: str) -> bool:
    """Whether ``method`` trains in a job of its own instead of sharing a backbone pass with other prompts
    (xlprompt.methods.training.train_prompts; the workflow's train_prompt rule rather than a train_group_* rule):
    :attr:`xlprompt.runtime.methods.Method.trains_alone`."""
    return method_of(method).trains_alone


@dataclass(frozen=True)
class LoraSettings:
    """LoRA (Hu et al. 2022) through PEFT's ``LoraConfig``: method ``lora``'s adapter (config block ``lora:``).

    The adapted weight of a target module is W + (alpha / rank) B A, with A (rank x d_in) and
    B (d_out x rank, zero at the start, so training starts from the backbone as it is).
    """

    rank: int = 8  # r, the inner dimension of B A
    alpha: float = 16.0  # lora_alpha: the update is scaled by alpha / rank
    dropout: float = 0.0  # lora_dropout on the adapter's input
    # Names of the linear modules to adapt (PEFT's target_modules: a module whose name ends with one);
    # empty: the backbone family's (xlprompt.models.families.LORA_TARGETS: query and value projections).
    target_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"lora rank must be >= 1, got {self.rank}")
        if self.alpha <= 0:
            raise ValueError(f"lora alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora dropout must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))


@dataclass(frozen=True)
class BitFitSettings:
    """BitFit (Ben Zaken et al. 2022): method ``bitfit`` trains the backbone's bias terms only (block ``bitfit:``).

    The paper trains every bias of the encoder (attention, FFN, LayerNorms) and a new classifier;
    here the label words are read through the pretrained LM head, whose bias is the read-out's
    own prior over the vocabulary: left frozen unless ``lm_head``.
    """

    lm_head: bool = False  # train the LM head's biases too (masked LMs' transform and output bias)


@dataclass(frozen=True)
class DeepPromptSettings:
    """Deep prompt tuning (P-tuning v2, Liu et al. 2022; prefix tuning, Li & Liang 2021): method ``deep_prompt``
    learns a key and a value prefix for the self-attention of every layer (or of ``layers``), the backbone
    frozen (config block ``deep_prompt:``; xlprompt.methods.deep_prompt).

    The prefix length is the run's prompt length (``prompt.lengths``, the L of ``deep_prompt/L<L>/``): L
    key/value vectors per layer, so that deep_prompt and spt of one L sit side by side in the tables.
    The prefixes are PEFT's ``PrefixEncoder`` (``PrefixTuningConfig``): N(0, 1) at the start, or with
    ``reparameterization`` an embedding of width d through PEFT's MLP
    Linear(d, reparam_hidden) -> Tanh -> Linear(reparam_hidden, layers x 2 x d) (Li & Liang 2021's hidden 512).
    There is no input-level prompt: the prompt block's init, position and reparameterization do not apply.
    """

    reparameterization: bool = False  # PEFT's prefix_projection: prefixes through a two-layer MLP while training
    reparam_hidden: int = 512  # PEFT's encoder_hidden_size, the MLP's hidden width
    # The layers whose self-attention takes a prefix, numbered from 0 (mT5: the encoder's blocks, then the
    # decoder's, as ltp tickets count them); empty (config: all): every layer. PEFT's prefix tuning knows only
    # every layer, so a subset trains and is stored by xlprompt's own injection only.
    layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        layers = () if self.layers in ("all", ["all"], ("all",)) else tuple(int(i) for i in self.layers)
        if any(i < 0 for i in layers):
            raise ValueError(f"deep_prompt layers must be >= 0 (or all), got {list(layers)}")
        if len(set(layers)) != len(layers):
            raise ValueError(f"deep_prompt layers: duplicated values in {list(layers)}")
        if self.reparam_hidden < 1:
            raise ValueError(f"deep_prompt reparam_hidden must be >= 1, got {self.reparam_hidden}")
        object.__setattr__(self, "layers", tuple(sorted(layers)))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines one trained prompt (the seed included)."""

    method: str = "spt"
    prompt_length: int = 16
    init: str = "vocab"  # uniform | vocab | label_words | source (a trained prompt: SPoT)
    position: str = ""  # the prompt's place: prefix | suffix (causal LMs only); "": the family's (causal: suffix)
    vocab_top_k: int = 5000  # init vocab: sample among this many most frequent tokens (SPoT: 5,000)
    vocab_source: str = "task"  # init vocab: the training text's most frequent tokens, or the model's (VOCAB_SOURCES)
    reparameterization: bool = False  # train the prompt through an MLP: P' = LayerNorm(W2 ReLU(W1 P))
    reparam_hidden: int = 200  # the reparameterization MLP's hidden width
    # The MLP's LayerNorm learns its gain and bias (false: they stay 1 and 0, as the SPT authors' code leaves
    # them for a frozen model: it unfreezes parameters[2:6], the two Linear layers, src/training.py).
    reparam_norm_affine: bool = True
    space: str = "model"  # model | raw: where the prompt's parameters live (PROMPT_SPACES)
    steps: int = 400  # training steps (a fixed count: results never depend on speed)
    batch_size: int = 32  # training examples per step
    lr: float = 0.3  # prompt learning rate
    backbone_lr: float = 1e-4  # full_ft, ltp, lora, bitfit: learning rate of the backbone weights they train
    weight_decay: float = 0.0  # AdamW's weight decay
    # Clip each run's gradient to this global L2 norm before a step (0: no clipping): HF Trainer's default,
    # which the SPT authors' code keeps.
    max_grad_norm: float = 1.0
    dropout: str = "always"  # the backbone's dropout while training (DROPOUT_MODES): HF Trainer's train mode
    # Checkpoint the backbone's layers: keep each layer's input only and recompute its activations in the
    # backward pass (long inputs; xlprompt.models.checkpointing). Same gradients, about one more forward a step.
    gradient_checkpointing: bool = False
    warmup_ratio: float = 0.1  # share of the steps the learning rate warms up over, then decays linearly to 0
    eval_every: int = 50  # validation loss every this many steps; the best prompt is kept
    checkpoint_every: int = 100  # a resumable checkpoint every this many steps
    train_language: str = "en"  # the language the prompt trains (and is selected) in
    train_per_class: int = 0  # few-shot: this many training examples per class (0: all)
    # Which step's prompt is kept: few_shot (lowest loss on a validation sample of train_per_class per
    # class, Perez et al. 2021; all of it when train_per_class is 0) | full_validation | last_step.
    selection: str = "few_shot"
    loss: str = "label_words"  # label_words: softmax over the label words | vocabulary: over the whole vocabulary
    max_length: int = 64  # tokens per input: the text's with its special tokens (length_budget text), or all
    length_budget: str = "text"  # what max_length counts: text | total, the prompt included (LENGTH_BUDGETS)
    add_special_tokens: bool = True  # the tokenizer's special tokens around the text (the SPT authors': none)
    # The validation split cut to balanced classes (each to the smallest class's count, drawn with the seed)
    # before the selection's sample, as the SPT authors undersample their dev split (src/training.py).
    balance_validation: bool = False
    # Validation examples per class for model selection (0: as ``selection`` says, train_per_class for
    # few_shot, all for full_validation). The SPT authors: ceil(n / 4) for n training examples per class,
    # except n = 32, where they keep the whole balanced split.
    validation_per_class: int = 0
    snapshot_step: int = 0  # keep the prompt at this step too (SPoT's task embedding; 0: none)
    seed: int = 0
    lora: LoraSettings = field(default_factory=LoraSettings)  # method lora's adapter
    bitfit: BitFitSettings = field(default_factory=BitFitSettings)  # method bitfit's biases
    deep_prompt: DeepPromptSettings = field(default_factory=DeepPromptSettings)  # method deep_prompt's prefixes

    def __post_init__(self) -> None:
        spec = method_of(self.method)  # raises for an unknown method, naming the known ones
        if self.init not in PROMPT_INITS:
            raise ValueError(f"prompt init must be one of {PROMPT_INITS}, got {self.init!r}")
        if self.position not in ("", *PROMPT_POSITIONS):
            raise ValueError(f"prompt position must be one of {PROMPT_POSITIONS}, got {self.position!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.space not in PROMPT_SPACES:
            raise ValueError(f"prompt space must be one of {PROMPT_SPACES}, got {self.space!r}")
        if self.vocab_source not in VOCAB_SOURCES:
            raise ValueError(f"vocab_source must be one of {VOCAB_SOURCES}, got {self.vocab_source!r}")
        if self.length_budget not in LENGTH_BUDGETS:
            raise ValueError(f"length_budget must be one of {LENGTH_BUDGETS}, got {self.length_budget!r}")
        if self.length_budget == "total" and self.max_length - self.prompt_positions < 8:
            raise ValueError(
                f"length_budget total: max_length {self.max_length} leaves {self.max_length - self.prompt_positions} "
                f"tokens for the text after a prompt of {self.prompt_positions}; raise max_length to at least "
                f"{self.prompt_positions + 8}"
            )
        if self.validation_per_class < 0:
            raise ValueError(f"validation_per_class must be >= 0, got {self.validation_per_class}")
        if self.dropout not in DROPOUT_MODES:
            raise ValueError(f"dropout must be one of {DROPOUT_MODES}, got {self.dropout!r}")
        if not self.max_grad_norm >= 0:  # NaN too
            raise ValueError(f"max_grad_norm must be >= 0 (0: no clipping), got {self.max_grad_norm}")
        if self.vocab_top_k < 1:
            raise ValueError(f"vocab_top_k must be positive, got {self.vocab_top_k}")
        if spec.prompt == "none" and self.prompt_length != 0:
            raise ValueError(f"method {self.method} takes prompt_length 0")
        if spec.prompt == "required" and self.prompt_length < 1:
            raise ValueError(f"prompt_length must be >= 1 for method {self.method}, got {self.prompt_length}")
        if self.prompt_length < 0:
            raise ValueError(f"prompt_length must be >= 0, got {self.prompt_length}")
        if isinstance(self.lora, dict):  # from a meta.json's config
            object.__setattr__(self, "lora", LoraSettings(**self.lora))
        if isinstance(self.bitfit, dict):
            object.__setattr__(self, "bitfit", BitFitSettings(**self.bitfit))
        if isinstance(self.deep_prompt, dict):
            object.__setattr__(self, "deep_prompt", DeepPromptSettings(**self.deep_prompt))
        if not spec.input_prompt:
            # Its prompt is L key/value prefixes per layer; nothing enters the input, so nothing may be set for it.
            if self.reparameterization:
                raise ValueError(
                    "method deep_prompt has no input-level prompt to reparameterise; its prefixes' MLP "
                    "is deep_prompt.reparameterization"
                )
            if self.position == "suffix":
                raise ValueError(
                    "method deep_prompt has no input-level prompt: its prefixes come before the text in "
                    "every layer (position suffix does not apply)"
                )
            if self.init == "source":
                raise ValueError(
                    "method deep_prompt cannot start from a source prompt (SPoT transfers input-level prompts of spt)"
                )
        for name in ("steps", "batch_size", "eval_every", "checkpoint_every", "max_length"):
            if getattr(self, name) < (0 if name == "steps" else 1):
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.snapshot_step <= self.steps:
            raise ValueError(f"snapshot_step must be in [0, steps={self.steps}], got {self.snapshot_step}")

    @property
    def spec(self) -> Method:
        """The method's record (xlprompt.runtime.methods)."""
        return method_of(self.method)

    @property
    def is_ltp(self) -> bool:
        return is_ltp(self.method)

    @property
    def prompt_positions(self) -> int:
        """Input positions the prompt takes (deep_prompt's prefixes take none: they sit in the attention)."""
        return self.prompt_length if self.spec.input_prompt else 0

    @property
    def trains(self) -> bool:
        return self.spec.trains

    @property
    def trains_backbone(self) -> bool:
        """Whether backbone weights change."""
        return self.spec.trains_backbone

    @property
    def dropout_on(self) -> bool:
        """Whether the backbone runs in train mode (its dropout on) during this run's training steps."""
        return self.dropout == "always" or (self.dropout == "when_training_backbone" and self.trains_backbone)

    @property
    def trains_alone(self) -> bool:
        """Whether the run needs a job of its own (:func:`trains_alone`)."""
        return self.spec.trains_alone


@dataclass(frozen=True)
class BackboneShape:
    """Size of the tiny encoder. Defaults: the demo's 3 x 128 model."""

    layers: int = 3  # encoder layers
    hidden: int = 128  # hidden width
    heads: int = 4  # attention heads (hidden must be divisible by heads)
    ffn: int = 512  # feed-forward width
    vocab_size: int = 2000  # WordPiece vocabulary size, at most (trained on the world's corpus)
    max_length: int = 64  # longest tokenised input, special tokens included
    max_prompt_length: int = 64  # prompts up to this length fit into the position table
    dropout: float = 0.1  # dropout of the attention and hidden layers

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"backbone: hidden ({self.hidden}) must be divisible by heads ({self.heads})")
