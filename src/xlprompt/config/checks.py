"""Checks of a whole experiment config that a JSON Schema cannot express.

The workflow runs the schema first (types, ranges, unknown keys; and, since bounds let NaN through, no
NaN or infinite number anywhere), then :func:`check_config`
(relations between keys), before any job is scheduled. Each error names the key, the bad
value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from xlprompt.data.contract import label_map_indices
from xlprompt.data.world import TASKS, WorldConfig, label_names
from xlprompt.models.families import (
    GENERATED_MODEL_TYPE,
    HUB_MODEL_TYPES,
    HUB_PREFIX_LAYERS,
    LORA_MODULES,
    MODEL_TYPES,
    NO_BIASES,
    PREFIX_ATTENTION,
    SU2022_MODEL_TYPES,
    prompt_position,
)
from xlprompt.runtime.methods import METHOD_LIST
from xlprompt.runtime.settings import (
    METHODS,
    BackboneShape,
    ConfigError,
    NeuronSettings,
    SpotSettings,
    TrainConfig,
    is_ltp,
)


def ticket_of(method: str) -> str:
    """The ticket an ltp method trains: ``ltp`` -> ``default``, ``ltp-<name>`` -> ``<name>``."""
    return method[len("ltp-") :] if method.startswith("ltp-") else "default"


def _key_path(error: ValidationError) -> str:
    return key_path(error.absolute_path)


def key_path(parts: Iterable[str | int]) -> str:
    """A config key as a user writes it: ``training.lr``, ``world.languages[1].code``."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def non_finite_numbers(value: Any, parts: tuple[str | int, ...] = ()) -> dict[str, str]:
    """Every NaN or infinite number in a config (YAML's ``.nan``, ``.inf``): key -> ``key: value is not a
    finite number``. JSON Schema's bounds let NaN through (every comparison with it is false)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {key_path(parts): f"{key_path(parts)}: {value!r} is not a finite number"}
    found: dict[str, str] = {}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found.update(non_finite_numbers(item, (*parts, key if isinstance(key, int) else str(key))))
    return found


def _describe(error: ValidationError) -> str:
    where, rule = _key_path(error), error.validator_value
    value: Any = error.instance
    schema: Any = error.schema  # the failing part of the schema (a mapping: ours has no boolean schemas)
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(set(value) - set(allowed))
        return f"{where}: unknown key(s) {unknown}; allowed: {allowed}"
    if error.validator == "enum":
        return f"{where}: {value!r} is not allowed; allowed: {rule}"
    if error.validator == "type":
        return f"{where}: {value!r} is not of type {rule}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "minItems":
        return f"{where}: needs at least {rule} item(s), got {len(value)}"
    if error.validator == "uniqueItems":
        return f"{where}: duplicated values in {value}"
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if error.validator in bounds:
        return f"{where}: {value!r} must be {bounds[error.validator]} {rule}"
    if error.validator == "pattern":
        return f"{where}: {value!r} must match {rule}"
    if error.validator == "anyOf" and "description" in schema:  # alternatives: the key's own description
        return f"{where}: {value!r} is not allowed; allowed: {schema['description']}"
    return f"{where}: {error.message}"


def validate_config(config: dict[str, Any], schema_path: str | Path) -> None:
    """Check ``config`` against the JSON Schema, one clear line per problem."""
    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    non_finite = non_finite_numbers(config)  # said once, without the bounds an infinity also breaks
    problems = [*non_finite.values(), *(_describe(e) for e in errors if _key_path(e) not in non_finite)]
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"{len(problems)} problems:\n{lines}")
    check_config(config)


@dataclass(frozen=True)
class DataView:
    """What the config's data offer, whichever source: tasks, languages, and which can train."""

    tasks: list[str]
    codes: list[str]  # every language of any task
    trainable: list[str]  # languages with a training split
    where: str  # the config key that lists the tasks, for messages
    label_names: Callable[[str], list[str]]
    open_ended: bool = False  # a source takes `languages: all` of a data set whose languages are known once fetched

    def knows(self, lang: str) -> bool:
        return self.open_ended or lang in self.codes

    def can_train(self, lang: str) -> bool:
        return self.open_ended or lang in self.trainable


def world_view(config: dict[str, Any]) -> DataView:
    world = config["world"]
    codes = [lang["code"] for lang in world["languages"]]
    if "en" not in codes:
        raise ConfigError(f"world.languages: 'en' (the base language) is required; got {codes}")
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise ConfigError(f"world.languages: duplicate code(s) {duplicates}")
    n_topics = world.get("n_topics", WorldConfig.n_topics)
    if world.get("generic_nouns", WorldConfig.generic_nouns) < n_topics:
        raise ConfigError("world.generic_nouns must be >= world.n_topics (generic nouns are the verbalizer words)")
    world_tasks = world.get("tasks", list(TASKS))
    if "domain" in world_tasks and n_topics < 3:
        raise ConfigError(
            f"world.n_topics: task domain (pairs of topics) needs at least 3 topics, got {n_topics}; "
            "raise n_topics or leave domain out of world.tasks"
        )
    return DataView(world_tasks, codes, codes, "world.tasks", lambda task: label_names(task, n_topics))


def data_view(config: dict[str, Any]) -> DataView:
    """The real path: Hub data sets (their languages, which are evaluation-only) and local files."""
    from xlprompt.data.hub import HUB_DATASETS  # pandas: only real-path configs pay for it

    codes: list[str] = []
    trainable: list[str] = []
    labels: dict[str, Any] = {}
    open_ended = False
    for task, sources in config["data"]["tasks"].items():
        for i, source in enumerate(sources):
            where = f"data.tasks.{task}[{i}]"
            if ("hub" in source) == ("local" in source):
                raise ConfigError(f"{where}: give either hub: (a Hub data set) or local: (your files), not both")
            if "hub" in source:
                dataset = HUB_DATASETS[source["hub"]]
                languages = source.get("languages", [])
                if not languages:
                    raise ConfigError(f"{where}.languages: list the languages to download ({source['hub']})")
                if languages == "all":
                    if dataset.languages is None:  # SIB-200's 205 codes are known once downloaded
                        open_ended = True
                    languages = list(dataset.languages or [])
                if dataset.languages is not None:
                    unknown = [lang for lang in languages if lang not in dataset.languages]
                    if unknown:
                        raise ConfigError(
                            f"{where}.languages: unknown language(s) {unknown} of {source['hub']}; "
                            f"allowed: {list(dataset.languages)}"
                        )
                names = list(dataset.label_names)
                if not dataset.evaluation_only:
                    trainable += languages
            else:
                languages, names = source["local"]["languages"], source["local"]["labels"]
                trainable += languages
            twice = sorted(set(languages) & set(codes))
            if twice:
                raise ConfigError(f"{where}.languages: {twice} already come from another source")
            codes += languages
            if labels.setdefault(task, names) != names:
                raise ConfigError(f"{where}: its labels {names} differ from the task's other source {labels[task]}")
        codes = list(dict.fromkeys(codes))
    return DataView(
        list(config["data"]["tasks"]),
        codes,
        list(dict.fromkeys(trainable)),
        "data.tasks",
        lambda task: labels[task],
        open_ended,
    )


def check_config(config: dict[str, Any]) -> None:
    if ("world" in config) == ("data" in config):
        raise ConfigError(
            "the config needs either world: (a generated world, offline) or data: (Hub data sets or "
            "your own files), not " + ("both" if "world" in config else "neither")
        )
    view = world_view(config) if "world" in config else data_view(config)
    backbone = config["backbone"]
    if "world" not in config and "hub" not in backbone:
        raise ConfigError(
            "backbone.hub: with data: (no generated world to pretrain on) the backbone comes from the "
            "Hub, e.g. hub: FacebookAI/xlm-roberta-base"
        )
    codes, world_tasks = view.codes, view.tasks
    for task in config["tasks"]:
        if task not in world_tasks:
            raise ConfigError(f"tasks: unknown task {task!r}; allowed ({view.where}): {world_tasks}")
    tickets = config.get("ltp", {}).get("tickets", {})
    variants = config.get("variants", {})
    for name, variant in variants.items():
        if name in METHODS or is_ltp(name):
            raise ConfigError(f"variants.{name}: {name!r} is a method's own name; name the variant otherwise")
        if variant["method"] not in VARIABLE_METHODS and not is_ltp(variant["method"]):
            raise ConfigError(
                f"variants.{name}.method: {variant['method']!r} cannot be varied; allowed: "
                f"{', '.join(VARIABLE_METHODS)}, ltp, ltp-<name>"
            )
        if variant.get("prompt") is False and variant["method"] not in PROMPT_OPTIONAL:
            raise ConfigError(
                f"variants.{name}.prompt: false (no soft prompt) applies to the methods whose prompt is optional, "
                f"{', '.join(PROMPT_OPTIONAL)}; {variant['method']} trains a prompt"
            )
    for name, override in config.get("method_overrides", {}).items():
        if "group_size" in override:
            raise ConfigError(
                f"method_overrides.{name}.group_size: a group trains several methods together; "
                "set group_size in training (or spot.training for SPoT's targets)"
            )
    for name in config.get("method_overrides", {}):  # a misspelt name would be ignored silently
        if name not in METHODS and not is_ltp(name) and name not in variants:
            raise ConfigError(
                f"method_overrides.{name}: {name!r} is neither a method ({', '.join(METHODS)}, "
                f"ltp-<name>) nor a variant ({', '.join(variants) or 'none defined'})"
            )
    for listed in config["methods"]:
        method = variants[listed]["method"] if listed in variants else listed
        if method not in METHODS and not is_ltp(method):
            raise ConfigError(
                f"methods: unknown method {method!r}; allowed: {list(METHODS)}, "
                "or ltp-<name> for a ticket named in ltp.tickets"
            )
        if method.startswith("ltp-") and ticket_of(method) not in tickets:
            raise ConfigError(
                f"methods: {method!r} needs a ticket {ticket_of(method)!r} in ltp.tickets; defined: {sorted(tickets)}"
            )
    for name, ticket in tickets.items():
        last = ticket.get("last_layer", -1)
        if last >= 0 and ticket.get("first_layer", 0) > last:  # select_ticket would find nothing maskable
            raise ConfigError(
                f"ltp.tickets.{name}: first_layer {ticket.get('first_layer', 0)} is after last_layer "
                f"{last}; allowed: first_layer <= last_layer (or last_layer -1, the last layer)"
            )
        layers = config["backbone"].get("layers", BackboneShape.layers)
        if "hub" in config["backbone"]:
            continue  # a Hub model's depth is known once it is downloaded; select_ticket checks it
        if ticket.get("first_layer", 0) >= layers or last >= layers:
            raise ConfigError(
                f"ltp.tickets.{name}: layer range {ticket.get('first_layer', 0)}..{last} "
                f"outside the backbone's {layers} layers (0..{layers - 1})"
            )
    train_language = config.get("training", {}).get("train_language", "en")
    if not view.knows(train_language):
        raise ConfigError(f"training.train_language: unknown language {train_language!r}; allowed: {codes}")
    if not view.can_train(train_language):
        raise ConfigError(
            f"training.train_language: {train_language!r} has no training split (evaluation only); "
            f"languages that can train: {view.trainable}"
        )
    for lang in config.get("ltp", {}).get("finetune", {}).get("languages", ["en"]):
        if not view.can_train(lang):
            raise ConfigError(f"ltp.finetune.languages: {lang!r} has no training text; allowed: {view.trainable}")
    for lang in config.get("evaluation", {}).get("languages", []):
        if not view.knows(lang):
            raise ConfigError(f"evaluation.languages: unknown language {lang!r}; allowed: {codes}")
    for key in ("seeds", "tasks", "methods"):
        values = config[key]
        if len(set(values)) != len(values):
            raise ConfigError(f"{key}: duplicated values in {values}")
    lengths = config["prompt"]["lengths"]
    if len(set(lengths)) != len(lengths):
        raise ConfigError(f"prompt.lengths: duplicated values in {lengths}")
    if "hub" not in backbone:  # a Hub model's position table is checked when it loads
        room = backbone.get("max_prompt_length", BackboneShape.max_prompt_length)
        too_long = [n for n in lengths if n > room]
        if too_long:
            raise ConfigError(
                f"prompt.lengths: {too_long} longer than backbone.max_prompt_length ({room}), "
                "the longest prompt the backbone's position table has room for"
            )
    check_training_sections(config, view)
    check_backbone_methods(config)
    check_backbone(config, "backbone", backbone)
    check_prompt_position(config)
    check_neurons(config)
    if "spot" in config:
        check_spot(config, view)


# Methods a variant (another name, other prompt settings) may be made of: those that train an input-level prompt
# (ltp's variants are its tickets: ltp-<ticket>).
VARIABLE_METHODS = tuple(m.name for m in METHOD_LIST if m.trains and m.input_prompt and m.backbone != "ticket")
PROMPT_OPTIONAL = tuple(m.name for m in METHOD_LIST if m.prompt == "optional")  # lora, bitfit


def check_backbone_methods(config: dict[str, Any]) -> None:
    """lora, bitfit and deep_prompt on the configured backbone: biases to train, target modules it has,
    attention that takes a key/value prefix, the layers to prefix.

    A Hub id the checks do not know (no HUB_MODEL_TYPES entry) is checked by train_prompt once
    downloaded, in the same words (xlprompt.methods.adapters, xlprompt.methods.deep_prompt).
    """
    variants = config.get("variants", {})
    methods = {variants[m]["method"] if m in variants else m for m in config["methods"]}
    model_type = backbone_model_type(config["backbone"])
    named = f"{model_type} ({config['backbone'].get('hub', 'the generated backbone')})"
    if "bitfit" in methods and model_type in NO_BIASES:
        raise ConfigError(
            f"methods: bitfit trains only bias terms, and {NO_BIASES[model_type]} (backbone {named}): "
            "nothing would train; use lora, ltp or full_ft with this backbone"
        )
    targets = config.get("lora", {}).get("target_modules", [])
    known = LORA_MODULES.get(model_type) if model_type is not None else None
    unknown = [t for t in targets if known is not None and t.split(".")[-1] not in known]
    if unknown:
        raise ConfigError(
            f"lora.target_modules: {unknown} are not linear modules of the layers of {named}; "
            f"allowed: {list(known or ())}"
        )
    if "deep_prompt" in methods:
        check_deep_prompt(config, model_type, named)


def check_deep_prompt(config: dict[str, Any], model_type: str | None, named: str) -> None:
    """deep_prompt needs attention that takes a key/value prefix, and layers the backbone has."""
    if model_type is not None and model_type not in PREFIX_ATTENTION:
        raise ConfigError(
            f"methods: deep_prompt puts key/value prefixes into every layer's self-attention, and the "
            f"attention of {named} takes none in xlprompt (known: {sorted(PREFIX_ATTENTION)}); use "
            "spt, lora or full_ft with this backbone"
        )
    layers = config.get("deep_prompt", {}).get("layers", "all")
    backbone = config["backbone"]
    depth = (
        HUB_PREFIX_LAYERS.get(backbone["hub"]) if "hub" in backbone else backbone.get("layers", BackboneShape.layers)
    )
    if layers == "all" or depth is None:  # an unknown Hub model's depth: checked once it is downloaded
        return
    outside = [i for i in layers if i >= depth]
    if outside:
        stacks = (
            " (the encoder's blocks, then the decoder's)"
            if model_type is not None and PREFIX_ATTENTION.get(model_type) == "t5"
            else ""
        )
        raise ConfigError(
            f"deep_prompt.layers: {outside} outside the {depth} layers of {named}{stacks}; "
            f"allowed: 0..{depth - 1}, or all"
        )


SPOT_BASELINES = ("random", "label_words")
SPOT_RESERVED = (*SPOT_BASELINES, "projector", "projector_zero_shot")  # inits that are not source names


def _steps(config: dict[str, Any], *sections: dict[str, Any]) -> int:
    merged = {**config.get("training", {})}
    for section in sections:
        merged.update(section)
    return merged.get("steps", TrainConfig.steps)


def check_spot(config: dict[str, Any], view: DataView) -> None:
    """Sources, targets and zero-shot label maps of the `spot` section."""
    spot = config["spot"]
    world_tasks, codes = view.tasks, view.codes
    for name, source in spot["sources"].items():
        where = f"spot.sources.{name}"
        if name in SPOT_RESERVED:
            raise ConfigError(
                f"{where}: {name!r} is the name of an init ({', '.join(SPOT_RESERVED)}); choose another source name"
            )
        for task in source["tasks"]:
            if task not in world_tasks:
                raise ConfigError(f"{where}.tasks: unknown task {task!r}; allowed ({view.where}): {world_tasks}")
        language = source.get("language", config.get("training", {}).get("train_language", "en"))
        if not view.knows(language):
            raise ConfigError(f"{where}.language: unknown language {language!r}; allowed: {codes}")
        if not view.can_train(language):
            raise ConfigError(
                f"{where}.language: {language!r} has no training split (evaluation only); languages "
                f"that can train: {view.trainable}"
            )
    for task in spot["targets"]:
        if task not in world_tasks:
            raise ConfigError(f"spot.targets: unknown task {task!r}; allowed ({view.where}): {world_tasks}")
    step = spot.get("embedding_step", SpotSettings.embedding_step)
    source_steps = _steps(config, config.get("method_overrides", {}).get("spt", {}))
    target_steps = _steps(config, spot.get("training", {}))
    if step > min(source_steps, target_steps):
        raise ConfigError(
            f"spot.embedding_step: {step} is after the end of training (source prompts train "
            f"{source_steps} steps, target prompts {target_steps})"
        )
    cross = spot.get("cross_model")
    if cross:
        if cross["source"] not in spot["sources"]:
            raise ConfigError(
                f"spot.cross_model.source: {cross['source']!r} is not a source; "
                f"allowed (spot.sources): {sorted(spot['sources'])}"
            )
        if cross["backbone"]["name"] == config["backbone"]["name"]:
            raise ConfigError("spot.cross_model.backbone.name: must differ from backbone.name (it is another model)")
        room = cross["backbone"].get("max_prompt_length", BackboneShape.max_prompt_length)
        too_long = [n for n in config["prompt"]["lengths"] if n > room]
        if too_long and "hub" not in cross["backbone"]:
            raise ConfigError(
                f"prompt.lengths: {too_long} longer than spot.cross_model.backbone.max_prompt_length ({room})"
            )
        check_backbone(config, "spot.cross_model.backbone", cross["backbone"])
        ignored = sorted(set(cross.get("training", {})) - set(PROJECTOR_SETTINGS))
        if ignored:  # the rule passes only these to train_projector: anything else would be dropped silently
            raise ConfigError(
                f"spot.cross_model.training: {ignored} not settings of the projector (it trains on its "
                f"source prompt's task and language, on all examples); allowed: {list(PROJECTOR_SETTINGS)}"
            )
    for source_task, maps in spot.get("zero_shot", {}).items():
        for target_task, mapping in maps.items():
            where = f"spot.zero_shot.{source_task}.{target_task}"
            for task in (source_task, target_task):
                if task not in world_tasks:
                    raise ConfigError(f"{where}: unknown task {task!r}; allowed ({view.where}): {world_tasks}")
            label_map_indices(
                mapping, source_task, view.label_names(source_task), target_task, view.label_names(target_task), where
            )


# What spot.cross_model.training may set (workflow/rules/common.smk projector_args passes these).
PROJECTOR_SETTINGS = ("steps", "batch_size", "lr", "warmup_ratio", "eval_every", "max_length")
# Keys of a backbone section that apply to any backbone; the others shape the generated one.
HUB_BACKBONE_KEYS = ("name", "hub", "revision", "threads", "dtype")


def training_sections(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every training section the workflow runs, by config key, with the settings it inherits merged in.

    Keys: ``training``, ``method_overrides.<name>`` (on top of training), ``spot.training``
    (SPoT's targets), ``spot.cross_model.training`` (the projector, on top of training).
    """
    base = config.get("training", {})
    sections = {"training": base}
    for name, override in config.get("method_overrides", {}).items():
        sections[f"method_overrides.{name}"] = {**base, **override}
    spot = config.get("spot", {})
    if spot:
        sections["spot.training"] = {**base, **spot.get("training", {})}
        if "cross_model" in spot:
            projector = {**base, **spot["cross_model"].get("training", {})}
            sections["spot.cross_model.training"] = {k: v for k, v in projector.items() if k in PROJECTOR_SETTINGS}
    return sections


def _set_in(config: dict[str, Any], where: str, key: str) -> str:
    """The key a merged setting came from: the section's own, else `training`'s."""
    node: Any = config
    for part in where.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return f"{where}.{key}" if key in node else f"training.{key}"


def check_training_sections(config: dict[str, Any], view: DataView) -> None:
    """Languages and few-shot sizes of every training section; max_length against the position table."""
    world = config.get("world")
    world_per_class = world.get("train_per_class", WorldConfig.train_per_class) if world is not None else None
    world_dev_per_class = world.get("dev_per_class", WorldConfig.dev_per_class) if world is not None else None
    for where, settings in training_sections(config).items():
        language = settings.get("train_language")
        if language is not None and where != "spot.cross_model.training":
            key = _set_in(config, where, "train_language")
            if not view.knows(language):
                raise ConfigError(f"{key}: unknown language {language!r}; allowed: {view.codes}")
            if not view.can_train(language):
                raise ConfigError(
                    f"{key}: {language!r} has no training split (evaluation only); languages that can "
                    f"train: {view.trainable}"
                )
        if settings.get("length_budget", TrainConfig.length_budget) == "total":
            max_length = settings.get("max_length", TrainConfig.max_length)
            longest = max(config["prompt"]["lengths"])
            if max_length - longest < 8:
                raise ConfigError(
                    f"{_set_in(config, where, 'max_length')}: {max_length} tokens per input (length_budget total) "
                    f"leave {max_length - longest} for the text after a prompt of {longest} (prompt.lengths); "
                    f"allowed: max_length >= {longest + 8}"
                )
        per_class = settings.get("train_per_class", TrainConfig.train_per_class)
        if world_per_class is not None and per_class > world_per_class:
            raise ConfigError(
                f"{_set_in(config, where, 'train_per_class')}: {per_class} examples per class, but the "
                f"world has {world_per_class} (world.train_per_class): few-shot training would silently "
                f"use {world_per_class}; allowed: 0 (all) to {world_per_class}"
            )
        dev_per_class = settings.get("validation_per_class", TrainConfig.validation_per_class)
        if world_dev_per_class is not None and dev_per_class > world_dev_per_class:
            raise ConfigError(
                f"{_set_in(config, where, 'validation_per_class')}: {dev_per_class} validation examples per "
                f"class, but the world has {world_dev_per_class} (world.dev_per_class); allowed: 0 to "
                f"{world_dev_per_class}"
            )


def check_backbone(config: dict[str, Any], where: str, section: dict[str, Any]) -> None:
    """A backbone section: its keys fit its kind (Hub or generated), its shape and position table hold."""
    if "hub" in section:
        ignored = sorted(set(section) - set(HUB_BACKBONE_KEYS))
        if ignored:  # download_backbone takes only hub and revision: the rest would be dropped silently
            raise ConfigError(
                f"{where}: {ignored} shape or pretrain the generated backbone, and {where}.hub "
                f"({section['hub']}) is downloaded as it is; allowed with hub: {list(HUB_BACKBONE_KEYS)}"
            )
        return
    if "revision" in section:
        raise ConfigError(
            f"{where}.revision: {section['revision']!r} is a Hub model's commit, but {where} has no hub: "
            "(it is generated and pretrained here); remove revision or add hub"
        )
    hidden, heads = section.get("hidden", BackboneShape.hidden), section.get("heads", BackboneShape.heads)
    if hidden % heads:
        raise ConfigError(
            f"{where}.hidden: {hidden} is not divisible by {where}.heads ({heads}); each attention head "
            f"gets hidden / heads dimensions: choose a multiple of {heads}"
        )
    text = section.get("max_length", BackboneShape.max_length)
    prompt_room = section.get("max_prompt_length", BackboneShape.max_prompt_length)
    room = text + prompt_room  # pretrain_backbone's position table, less XLM-R's 2 reserved rows
    table = f"{where}.max_length {text} + {where}.max_prompt_length {prompt_room} = {room} positions"
    cross = where.startswith("spot.")
    sections = training_sections(config)
    # The cross model trains transfer targets (spot.training) and the projector; the main one everything else.
    sections = {
        k: v for k, v in sections.items() if (k.startswith("spot.") if cross else k != "spot.cross_model.training")
    }
    longest = max(config["prompt"]["lengths"])
    for section_key, settings in sections.items():
        max_length = settings.get("max_length", TrainConfig.max_length)
        if settings.get("length_budget", TrainConfig.length_budget) == "total":
            if max_length > room:
                raise ConfigError(
                    f"{_set_in(config, section_key, 'max_length')}: {max_length} tokens per input (length_budget "
                    f"total), more than {where}'s position table holds ({table}); allowed: max_length <= {room}, "
                    f"or raise {where}.max_length"
                )
            continue
        if longest + max_length > room:
            raise ConfigError(
                f"{_set_in(config, section_key, 'max_length')}: {max_length} text tokens + a prompt of {longest} "
                f"(prompt.lengths) = {longest + max_length}, more than {where}'s position table holds ({table}); "
                f"allowed: max_length <= {room - longest}, or raise {where}.max_length"
            )


def backbone_model_type(section: dict[str, Any]) -> str | None:
    """The model type of a backbone section: the generated one, a known Hub id's, or None (known once downloaded)."""
    return HUB_MODEL_TYPES.get(section["hub"]) if "hub" in section else GENERATED_MODEL_TYPE


def check_neurons(config: dict[str, Any]) -> None:
    """neurons.layout su2022 (Su et al.'s prompt-alone input, xlprompt.analysis.neurons) takes mode alone and an
    XLM-R or RoBERTa backbone; an unknown Hub id's type is known once downloaded, and prompt_activations refuses
    it then, in the same words."""
    neurons = config.get("neurons", {})
    layout = neurons.get("layout", NeuronSettings.layout)
    if layout == NeuronSettings.layout:
        return
    mode = neurons.get("mode", NeuronSettings.mode)
    if mode != "alone":
        raise ConfigError(
            f"neurons.layout: {layout} lays out a prompt fed alone; neurons.mode {mode} reads it on task inputs as "
            "it trained: use mode alone, or layout xlprompt"
        )
    model_type = backbone_model_type(config["backbone"])
    if model_type is not None and model_type not in SU2022_MODEL_TYPES:
        raise ConfigError(
            f"neurons.layout: {layout} rebuilds RoBERTa's embedding layer (Su et al.'s code); backbone "
            f"{config['backbone'].get('hub', config['backbone']['name'])} is {model_type!r}; allowed: "
            f"{list(SU2022_MODEL_TYPES)}, or layout xlprompt"
        )


def check_prompt_position(config: dict[str, Any]) -> None:
    """A prompt after the text (position suffix) needs a causal LM (xlprompt.models.families.prompt_position).

    An unknown Hub id's family is known once downloaded: training refuses it then, in the same words.
    """
    model_type = backbone_model_type(config["backbone"])
    if model_type not in MODEL_TYPES:
        return
    positions = [("prompt.position", config["prompt"].get("position"))] + [
        (f"variants.{name}.position", variant.get("position")) for name, variant in config.get("variants", {}).items()
    ]
    for key, position in positions:
        try:
            prompt_position(MODEL_TYPES[model_type], position or "", model_type)
        except ValueError as err:
            raise ConfigError(f"{key}: {err}") from None
