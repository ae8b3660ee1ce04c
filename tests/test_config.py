"""Bad configs fail before any job runs, with a message naming the key and what is allowed."""

import copy
from pathlib import Path

import pytest
import yaml

from xlprompt.config.checks import validate_config
from xlprompt.models.families import HUB_MODEL_TYPES
from xlprompt.runtime.settings import ConfigError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def smoke() -> dict:
    return yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())


def mutate(path: str, value):
    """Set (or with value=KeyError, delete) a dotted key path in a copy of the smoke config."""

    def apply(cfg):
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is KeyError:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value
        return cfg

    return apply


def combine(*changes):
    """Several changes, applied in order."""

    def apply(cfg):
        for change in changes:
            cfg = change(cfg)
        return cfg

    return apply


BAD = [
    (
        "unknown-top-key",
        mutate("learning_rate", 0.1),
        r"\(top level\): unknown key\(s\) \['learning_rate'\]; allowed: \[.*'training'",
    ),
    (
        "misspelt-nested-key",
        mutate("training.step", 10),
        r"training: unknown key\(s\) \['step'\]; allowed: \[.*'steps'",
    ),
    ("wrong-type", mutate("training.steps", "many"), r"training.steps: 'many' is not of type integer"),
    # YAML's .nan and .inf: JSON Schema's bounds let NaN through (every comparison with it is false).
    ("nan-learning-rate", mutate("training.lr", float("nan")), r"training.lr: nan is not a finite number"),
    (
        "infinite-share-in-a-list",
        mutate("world.languages", [{"code": "en"}, {"code": "rev", "shared_vocab": float("inf")}]),
        r"world.languages\[1\].shared_vocab: inf is not a finite number",
    ),
    ("empty-seed-list", mutate("seeds", []), r"seeds: needs at least 1 item"),
    ("empty-task-list", mutate("tasks", []), r"tasks: needs at least 1 item"),
    ("empty-method-list", mutate("methods", []), r"methods: needs at least 1 item"),
    ("empty-prompt-lengths", mutate("prompt.lengths", []), r"prompt.lengths: needs at least 1 item"),
    ("seeds-not-a-list", mutate("seeds", 0), r"seeds: 0 is not of type array"),
    (
        "unknown-method",
        mutate("methods", ["spt", "lorra"]),
        r"methods: unknown method 'lorra'; allowed: \['spt', 'full_ft', 'ltp'",
    ),
    ("ltp-ticket-undefined", mutate("methods", ["ltp-p05"]), r"methods: 'ltp-p05' needs a ticket 'p05' in ltp.tickets"),
    (
        "sparsity-above-one",
        mutate("ltp", {"tickets": {"default": {"sparsity": 1.5}}}),
        r"ltp.tickets.default.sparsity: 1.5 must be <= 1",
    ),
    (
        "sparsity-zero",
        mutate("ltp", {"tickets": {"default": {"sparsity": 0}}}),
        r"ltp.tickets.default.sparsity: 0 must be > 0",
    ),
    (
        "ticket-layer-out-of-range",
        mutate("ltp", {"tickets": {"default": {"first_layer": 5}}}),
        r"ltp.tickets.default: layer range 5..-1 outside the backbone's 1 layers",
    ),
    (
        "unknown-task",
        mutate("tasks", ["topic", "qa"]),
        r"tasks: unknown task 'qa'; allowed \(world.tasks\): \['topic', 'nli', 'paraphrase', 'domain', 'rte'\]",
    ),
    (
        "unknown-word-order",
        mutate("world.languages.1.word_order", "vso"),
        r"world.languages\[1\].word_order: 'vso' is not allowed",
    ),
    (
        "unknown-eval-language",
        mutate("evaluation", {"languages": ["en", "de"]}),
        r"evaluation.languages: unknown language 'de'; allowed: \['en', 'rev', 'far'\]",
    ),
    (
        "unknown-train-language",
        mutate("training.train_language", "xx"),
        r"training.train_language: unknown language 'xx'",
    ),
    ("missing-english", mutate("world.languages", [{"code": "rev"}]), r"'en' \(the base language\) is required"),
    ("duplicate-seeds", mutate("seeds", [0, 0]), r"seeds: duplicated values in \[0, 0\]"),
    (
        "prompt-too-long",
        mutate("prompt.lengths", [100]),
        r"prompt.lengths: \[100\] longer than backbone.max_prompt_length \(64\)",
    ),
    ("shared-vocab-above-one", mutate("world.languages.1.shared_vocab", 1.5), r"shared_vocab: 1.5 must be <= 1"),
    ("missing-required", mutate("world.name", KeyError), r"world: 'name' is a required property"),
    ("bad-experiment-name", mutate("experiment", "my run"), r"experiment: 'my run' must match"),
    (
        "spot-source-named-like-a-baseline",
        mutate("spot.sources.random", {"tasks": ["nli"]}),
        r"spot.sources.random: 'random' is the name of an init \(random, label_words, projector, projector_zero_shot\)",
    ),
    (
        "spot-unknown-target",
        mutate("spot.targets", ["domain", "sentiment"]),
        r"spot.targets: unknown task 'sentiment'; allowed \(world.tasks\)",
    ),
    (
        "spot-target-not-in-world",
        mutate("world.tasks", ["topic", "nli", "paraphrase", "rte"]),
        r"spot.sources|spot.targets: unknown task 'domain'",
    ),
    (
        "spot-source-unknown-language",
        mutate("spot.sources.topic_rev.language", "xx"),
        r"spot.sources.topic_rev.language: unknown language 'xx'; allowed: \['en', 'rev', 'far'\]",
    ),
    (
        "spot-embedding-after-training",
        mutate("spot.embedding_step", 50),
        r"spot.embedding_step: 50 is after the end of training \(source prompts train 20 steps, target prompts 10\)",
    ),
    (
        "spot-label-map-incomplete",
        mutate("spot.zero_shot.topic.domain", {"sports": "politics"}),
        r"spot.zero_shot.topic.domain: the map must give every label of topic exactly once",
    ),
    (
        "spot-label-map-unknown-target-label",
        mutate("spot.zero_shot.nli.rte.neutral", "maybe"),
        r"spot.zero_shot.nli.rte: unknown rte label\(s\) \['maybe'\]; allowed: \['entailment', 'not_entailment'\]",
    ),
    (
        "cross-model-unknown-source",
        mutate("spot.cross_model.source", "nli"),
        r"spot.cross_model.source: 'nli' is not a source; allowed \(spot.sources\): \['mix', 'topic', 'topic_rev'\]",
    ),
    (
        "cross-model-same-backbone",
        mutate("spot.cross_model.backbone.name", "tiny-xlmr-smoke"),
        r"spot.cross_model.backbone.name: must differ from backbone.name",
    ),
    (
        "domain-needs-three-topics",
        mutate("world.n_topics", 2),
        r"world.n_topics: task domain \(pairs of topics\) needs at least 3",
    ),
    # Limits: each of these passed the checks before and then crashed a stage or silently did less.
    (
        "text-and-prompt-beyond-the-position-table",
        combine(mutate("backbone.max_length", 16), mutate("backbone.max_prompt_length", 4)),
        r"training.max_length: 64 text tokens \+ a prompt of 4 \(prompt.lengths\) = 68, more than "
        r"backbone's position table "
        r"holds \(backbone.max_length 16 \+ backbone.max_prompt_length 4 = 20 positions\); allowed: max_length <= 16",
    ),
    (
        "override-max-length-beyond-the-position-table",
        mutate("method_overrides", {"full_ft": {"max_length": 200}}),
        r"method_overrides.full_ft.max_length: 200 text tokens \+ a prompt of 4 .* = 204, more than "
        r"backbone's position table holds \(.* = 128 positions\)",
    ),
    (
        "cross-model-position-table",
        mutate("spot.cross_model.training.max_length", 200),
        r"spot.cross_model.training.max_length: 200 text tokens \+ a prompt of 4 .* more than "
        r"spot.cross_model.backbone's position table",
    ),
    (
        "width-not-divisible-by-heads",
        mutate("backbone.hidden", 33),
        r"backbone.hidden: 33 is not divisible by backbone.heads \(2\)",
    ),
    (
        "cross-model-width-not-divisible-by-heads",
        mutate("spot.cross_model.backbone.heads", 5),
        r"spot.cross_model.backbone.hidden: 24 is not divisible by spot.cross_model.backbone.heads \(5\)",
    ),
    (
        "ticket-first-layer-after-last",
        combine(mutate("backbone.layers", 3), mutate("ltp.tickets.default", {"first_layer": 2, "last_layer": 1})),
        r"ltp.tickets.default: first_layer 2 is after last_layer 1",
    ),
    (
        "few-shot-beyond-the-world",
        mutate("training.train_per_class", 50),
        r"training.train_per_class: 50 examples per class, but the world has 20 \(world.train_per_class\)",
    ),
    (
        "spot-few-shot-beyond-the-world",
        mutate("spot.training.train_per_class", 21),
        r"spot.training.train_per_class: 21 examples per class, but the world has 20",
    ),
    (
        "override-in-an-unknown-language",
        mutate("method_overrides", {"spt": {"train_language": "xx"}}),
        r"method_overrides.spt.train_language: unknown language 'xx'; allowed: \['en', 'rev', 'far'\]",
    ),
    (
        "spot-targets-in-an-unknown-language",
        mutate("spot.training.train_language", "de"),
        r"spot.training.train_language: unknown language 'de'",
    ),
    (
        "projector-setting-it-ignores",
        mutate("spot.cross_model.training.train_per_class", 4),
        r"spot.cross_model.training: \['train_per_class'\] not settings of the projector",
    ),
    (
        "revision-of-a-generated-backbone",
        mutate("backbone.revision", "abc123"),
        r"backbone.revision: 'abc123' is a Hub model's commit, but backbone has no hub:",
    ),
    # Protocols as named options: what they allow.
    (
        "suffix-prompt-on-a-masked-lm",
        mutate("prompt.position", "suffix"),
        r"prompt.position: 'suffix' needs a causal LM \(XGLM, BLOOM\); backbone family masked_lm \(xlm-roberta\)",
    ),
    (
        "suffix-variant-on-a-masked-lm",
        combine(
            mutate("variants", {"late": {"method": "spt", "position": "suffix"}}), mutate("methods", ["spt", "late"])
        ),
        r"variants.late.position: 'suffix' needs a causal LM",
    ),
    (
        "unknown-selection",
        mutate("training.selection", "best"),
        r"training.selection: 'best' is not allowed; allowed: \['few_shot', 'full_validation', 'last_step'\]",
    ),
    (
        "unknown-loss",
        mutate("method_overrides", {"spt": {"loss": "hinge"}}),
        r"method_overrides.spt.loss: 'hinge' is not allowed; allowed: \['label_words', 'vocabulary'\]",
    ),
    ("no-init-tokens", mutate("prompt.vocab_top_k", 0), r"prompt.vocab_top_k: 0 must be >= 1"),
    # The options that reproduce the authors' code (docs/methods.md, "Protocols, method by method").
    (
        "unknown-prompt-space",
        mutate("prompt.space", "scaled"),
        r"prompt.space: 'scaled' is not allowed; allowed: \['model', 'raw'\]",
    ),
    (
        "norm-affine-not-a-boolean",
        mutate("prompt.reparam_norm_affine", "no"),
        r"prompt.reparam_norm_affine: 'no' is not of type boolean",
    ),
    (
        "unknown-vocab-source",
        mutate("prompt.vocab_source", "corpus"),
        r"prompt.vocab_source: 'corpus' is not allowed; allowed: \['task', 'model'\]",
    ),
    ("negative-grad-norm", mutate("training.max_grad_norm", -1.0), r"training.max_grad_norm: -1.0 must be >= 0"),
    (
        "nan-grad-norm",
        mutate("training.max_grad_norm", float("nan")),
        r"training.max_grad_norm: nan is not a finite number",
    ),
    (
        "unknown-dropout",
        mutate("method_overrides", {"spt": {"dropout": "sometimes"}}),
        r"method_overrides.spt.dropout: 'sometimes' is not allowed; "
        r"allowed: \['always', 'never', 'when_training_backbone'\]",
    ),
    (
        "unknown-length-budget",
        mutate("training.length_budget", "prompt"),
        r"training.length_budget: 'prompt' is not allowed; allowed: \['text', 'total'\]",
    ),
    (
        "special-tokens-not-a-boolean",
        mutate("training.add_special_tokens", 0),
        r"training.add_special_tokens: 0 is not of type boolean",
    ),
    (
        "balance-not-a-boolean",
        mutate("training.balance_validation", "yes"),
        r"training.balance_validation: 'yes' is not of type boolean",
    ),
    (
        "negative-validation-size",
        mutate("training.validation_per_class", -2),
        r"training.validation_per_class: -2 must be >= 0",
    ),
    (
        "validation-size-above-the-worlds",
        mutate("training.validation_per_class", 1000),
        r"training.validation_per_class: 1000 validation examples per class, "
        r"but the world has \d+ \(world.dev_per_class\)",
    ),
    (
        "total-budget-leaves-no-text",
        combine(mutate("training.length_budget", "total"), mutate("training.max_length", 8)),
        r"training.max_length: 8 tokens per input \(length_budget total\) "
        r"leave -?\d+ for the text after a prompt of \d+",
    ),
]


def paper() -> dict:
    return yaml.safe_load((REPO / "config" / "xnli-xlmr.yaml").read_text())


def add_world(cfg):
    cfg["world"] = smoke()["world"]
    return cfg


# The real path (data: and backbone.hub:), as mistakes in config/xnli-xlmr.yaml.
BAD_REAL = [
    ("world-and-data", add_world, r"either world: .* or data: .*, not both"),
    ("neither-world-nor-data", mutate("data", KeyError), r"either world: .* or data: .*, not neither"),
    (
        "train-on-an-evaluation-only-language",
        mutate("training.train_language", "aym"),
        r"training.train_language: 'aym' has no training split \(evaluation only\); languages that can "
        r"train: \['en', 'ar'",
    ),
    (
        "unknown-hub-language",
        mutate("data.tasks.nli.0.languages", ["en", "xx"]),
        r"data.tasks.nli\[0\].languages: unknown language\(s\) \['xx'\] of xnli; allowed: \['ar', 'bg'",
    ),
    (
        "unknown-hub-dataset",
        mutate("data.tasks.nli.0.hub", "mnli"),
        r"data.tasks.nli\[0\].hub: 'mnli' is not allowed; "
        r"allowed: \['xnli', 'americasnli', 'pawsx', 'sib200', 'belebele'\]",
    ),
    (
        "hub-and-local-in-one-source",
        mutate("data.tasks.nli.0.local", {"path": "x/{lang}/{split}.tsv", "languages": ["en"], "labels": ["a", "b"]}),
        r"data.tasks.nli\[0\]: give either hub: \(a Hub data set\) or local: \(your files\), not both",
    ),
    (
        "data-without-a-hub-backbone",
        mutate("backbone.hub", KeyError),
        r"backbone.hub: with data: \(no generated world to pretrain on\)",
    ),
    (
        "sources-with-different-labels",
        mutate("data.tasks.nli.1", {"hub": "pawsx", "languages": ["ja"]}),
        r"data.tasks.nli\[1\]: its labels \['different', 'paraphrase'\] differ from the task's other "
        r"source \['entailment'",
    ),
    (
        "language-from-two-sources",
        mutate("data.tasks.nli.1", {"hub": "xnli", "languages": ["de"]}),
        r"data.tasks.nli\[1\].languages: \['de'\] already come from another source",
    ),
    ("task-not-in-data", mutate("tasks", ["topic"]), r"tasks: unknown task 'topic'; allowed \(data.tasks\): \['nli'\]"),
    (
        "ltp-text-in-an-evaluation-only-language",
        mutate("ltp.finetune.languages", ["quy"]),
        r"ltp.finetune.languages: 'quy' has no training text",
    ),
    (
        "variant-named-like-a-method",
        mutate("variants", {"spt": {"method": "full_ft"}}),
        r"variants.spt: 'spt' is a method's own name",
    ),
    (
        "variant-of-a-control",
        mutate("variants", {"frozen": {"method": "no_prompt"}}),
        r"variants.frozen.method: 'no_prompt' cannot be varied",
    ),
    (
        "promptless-variant-of-a-prompt-method",
        mutate("variants", {"bare": {"method": "spt", "prompt": False}}),
        r"variants.bare.prompt: false \(no soft prompt\) applies to the methods whose prompt is optional, "
        r"lora, bitfit; spt trains a prompt",
    ),
    (
        "misspelt-method-override",
        mutate("method_overrides", {"ful_ft": {"steps": 10}}),
        r"method_overrides.ful_ft: 'ful_ft' is neither a method",
    ),
    (
        "group-size-of-one-method",
        mutate("method_overrides", {"spt": {"group_size": 2}}),
        r"method_overrides.spt.group_size: a group trains several methods together; set group_size in training",
    ),
    ("group-size-zero", mutate("training.group_size", 0), r"training.group_size: 0 must be >= 1"),
    (
        "languages-neither-a-list-nor-all",
        mutate("data.tasks.nli.0.languages", "everything"),
        r"data.tasks.nli\[0\].languages: 'everything' is not allowed; allowed: the data set's config names to fetch, "
        r"or all \(every language it has\)",
    ),
    (
        "hub-backbone-with-a-shape",
        mutate("backbone.layers", 3),
        r"backbone: \['layers'\] shape or pretrain the generated backbone, and backbone.hub "
        r"\(FacebookAI/xlm-roberta-base\) "
        r"is downloaded as it is; allowed with hub: \['name', 'hub', 'revision', 'threads', 'dtype'\]",
    ),
    (
        "hub-ticket-first-layer-after-last",
        mutate("ltp.tickets", {"default": {"first_layer": 8, "last_layer": 3}}),
        r"ltp.tickets.default: first_layer 8 is after last_layer 3",
    ),
    (
        "spot-source-in-an-evaluation-only-language",
        mutate("spot", {"sources": {"nli_aym": {"tasks": ["nli"], "language": "aym"}}, "targets": ["nli"]}),
        r"spot.sources.nli_aym.language: 'aym' has no training split \(evaluation only\)",
    ),
]


@pytest.mark.parametrize(("change", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_is_rejected_with_a_clear_message(change, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(change(copy.deepcopy(smoke())), SCHEMA)


@pytest.mark.parametrize(("change", "message"), [b[1:] for b in BAD_REAL], ids=[b[0] for b in BAD_REAL])
def test_bad_real_path_config_is_rejected_with_a_clear_message(change, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(change(copy.deepcopy(paper())), SCHEMA)


def test_what_every_family_can_do_passes_the_checks():
    """spt, full_ft, ltp (and an ltp variant) and ON in mode alone with every pinned Hub backbone; mode task
    with masked LMs."""
    for hub in HUB_MODEL_TYPES:
        cfg = paper()
        cfg["backbone"]["hub"], cfg["methods"] = hub, ["spt", "full_ft", "ltp", "sparse", "no_prompt"]
        cfg["variants"] = {"sparse": {"method": "ltp"}}
        validate_config(cfg, SCHEMA)
    for hub in ("FacebookAI/xlm-roberta-base", "google-bert/bert-base-multilingual-cased"):
        cfg = paper()
        cfg["backbone"]["hub"], cfg["neurons"] = hub, {"mode": "task"}
        validate_config(cfg, SCHEMA)


def test_an_unknown_hub_backbone_is_left_to_its_stages():
    """Its family is known once downloaded: the stages refuse a model type they do not know then
    (xlprompt.models.families.family_of, tests/test_families.py)."""
    cfg = paper()
    cfg["backbone"].update(hub="someone/their-model", revision="abc")
    validate_config(cfg, SCHEMA)


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "config").glob("*.yaml")))
def test_every_shipped_config_is_valid(name):
    validate_config(yaml.safe_load((REPO / "config" / name).read_text()), SCHEMA)


# Zero-shot label maps of any shape (spot.zero_shot): kept apart from BAD, which others extend.
RTE_ONTO_NLI = {"entailment": "entailment", "not_entailment": "contradiction"}  # 2 labels onto 3


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {**RTE_ONTO_NLI, "maybe": "neutral"},
            r"spot.zero_shot.rte.nli: unknown rte label\(s\) \['maybe'\]; "
            r"allowed: \['entailment', 'not_entailment'\]",
        ),
        (
            {**RTE_ONTO_NLI, "not_entailment": "unrelated"},
            r"spot.zero_shot.rte.nli: unknown nli label\(s\) \['unrelated'\]; "
            r"allowed: \['entailment', 'neutral', 'contradiction'\]",
        ),
        ({"entailment": "entailment"}, r"spot.zero_shot.rte.nli: the map must give every label of rte exactly once"),
    ],
    ids=["unknown-source-label", "unknown-target-label", "source-label-left-out"],
)
def test_zero_shot_label_maps_of_any_shape_and_only_known_labels(mapping, message):
    cfg = smoke()
    cfg["spot"]["zero_shot"]["rte"] = {"nli": RTE_ONTO_NLI}  # a target label (neutral) no source label reaches
    validate_config(copy.deepcopy(cfg), SCHEMA)  # the smoke config's 3-onto-2 maps, and this 2-onto-3 one
    cfg["spot"]["zero_shot"]["rte"]["nli"] = mapping
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg, SCHEMA)
