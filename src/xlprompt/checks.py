"""Checks of a whole experiment config that a JSON Schema cannot express.

The workflow runs the schema first (types, ranges, unknown keys), then :func:`check_config`
(relations between keys), before any job is scheduled. Each error names the key, the bad
value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from xlprompt.settings import METHODS, BackboneShape, TrainConfig, is_ltp
from xlprompt.world import TASKS, WorldConfig, label_names


def ticket_of(method: str) -> str:
    """The ticket an ltp method trains: ``ltp`` -> ``default``, ``ltp-<name>`` -> ``<name>``."""
    return method[len("ltp-"):] if method.startswith("ltp-") else "default"


class ConfigError(ValueError):
    """A config value that is not allowed; the message says which and why."""


def _key_path(error: ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _describe(error: ValidationError) -> str:
    where, value, rule = _key_path(error), error.instance, error.validator_value
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
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
    return f"{where}: {error.message}"


def validate_config(config: dict[str, Any], schema_path: str | Path) -> None:
    """Check ``config`` against the JSON Schema, one clear line per problem."""
    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if len(errors) == 1:
        raise ConfigError(_describe(errors[0]))
    if errors:
        lines = "\n".join(f"  - {_describe(e)}" for e in errors)
        raise ConfigError(f"{len(errors)} problems:\n{lines}")
    check_config(config)


def check_config(config: dict[str, Any]) -> None:
    world = config["world"]
    codes = [lang["code"] for lang in world["languages"]]
    if "en" not in codes:
        raise ConfigError(f"world.languages: 'en' (the base language) is required; got {codes}")
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise ConfigError(f"world.languages: duplicate code(s) {duplicates}")
    world_tasks = world.get("tasks", list(TASKS))
    for task in config["tasks"]:
        if task not in world_tasks:
            raise ConfigError(f"tasks: unknown task {task!r}; allowed (world.tasks): {world_tasks}")
    tickets = config.get("ltp", {}).get("tickets", {})
    for method in config["methods"]:
        if method not in METHODS and not is_ltp(method):
            raise ConfigError(f"methods: unknown method {method!r}; allowed: {list(METHODS)}, "
                              "or ltp-<name> for a ticket named in ltp.tickets")
        if method.startswith("ltp-") and ticket_of(method) not in tickets:
            raise ConfigError(f"methods: {method!r} needs a ticket {ticket_of(method)!r} in ltp.tickets; "
                              f"defined: {sorted(tickets)}")
    for name, ticket in tickets.items():
        last = ticket.get("last_layer", -1)
        layers = config["backbone"].get("layers", BackboneShape.layers)
        if ticket.get("first_layer", 0) >= layers or last >= layers:
            raise ConfigError(f"ltp.tickets.{name}: layer range {ticket.get('first_layer', 0)}..{last} "
                              f"outside the backbone's {layers} layers (0..{layers - 1})")
    train_language = config.get("training", {}).get("train_language", "en")
    if train_language not in codes:
        raise ConfigError(f"training.train_language: unknown language {train_language!r}; allowed: {codes}")
    for lang in config.get("ltp", {}).get("finetune", {}).get("languages", []):
        if lang not in codes:
            raise ConfigError(f"ltp.finetune.languages: unknown language {lang!r}; allowed: {codes}")
    for lang in config.get("evaluation", {}).get("languages", []):
        if lang not in codes:
            raise ConfigError(f"evaluation.languages: unknown language {lang!r}; allowed: {codes}")
    for key in ("seeds", "tasks", "methods"):
        values = config[key]
        if len(set(values)) != len(values):
            raise ConfigError(f"{key}: duplicated values in {values}")
    lengths = config["prompt"]["lengths"]
    if len(set(lengths)) != len(lengths):
        raise ConfigError(f"prompt.lengths: duplicated values in {lengths}")
    backbone = config["backbone"]
    room = backbone.get("max_prompt_length", BackboneShape.max_prompt_length)
    too_long = [n for n in lengths if n > room]
    if too_long:
        raise ConfigError(
            f"prompt.lengths: {too_long} longer than backbone.max_prompt_length ({room}), "
            "the longest prompt the backbone's position table has room for")
    n_topics = world.get("n_topics", WorldConfig.n_topics)
    if world.get("generic_nouns", WorldConfig.generic_nouns) < n_topics:
        raise ConfigError("world.generic_nouns must be >= world.n_topics (generic nouns are the verbalizer words)")
    if "domain" in world_tasks and n_topics < 3:
        raise ConfigError(f"world.n_topics: task domain (pairs of topics) needs at least 3 topics, got {n_topics}; "
                          "raise n_topics or leave domain out of world.tasks")
    if "spot" in config:
        check_spot(config, world_tasks, codes, n_topics)


SPOT_BASELINES = ("random", "label_words")
SPOT_RESERVED = SPOT_BASELINES + ("projector", "projector_zero_shot")  # inits that are not source names
DEFAULT_EMBEDDING_STEP = 100


def _steps(config: dict[str, Any], *sections: dict[str, Any]) -> int:
    merged = {**config.get("training", {})}
    for section in sections:
        merged.update(section)
    return merged.get("steps", TrainConfig.steps)


def check_spot(config: dict[str, Any], world_tasks: list[str], codes: list[str], n_topics: int) -> None:
    """Sources, targets and zero-shot label maps of the `spot` section."""
    spot = config["spot"]
    for name, source in spot["sources"].items():
        where = f"spot.sources.{name}"
        if name in SPOT_RESERVED:
            raise ConfigError(f"{where}: {name!r} is the name of an init ({', '.join(SPOT_RESERVED)}); "
                              "choose another source name")
        for task in source["tasks"]:
            if task not in world_tasks:
                raise ConfigError(f"{where}.tasks: unknown task {task!r}; allowed (world.tasks): {world_tasks}")
        if source.get("language", config.get("training", {}).get("train_language", "en")) not in codes:
            raise ConfigError(f"{where}.language: unknown language {source['language']!r}; allowed: {codes}")
    for task in spot["targets"]:
        if task not in world_tasks:
            raise ConfigError(f"spot.targets: unknown task {task!r}; allowed (world.tasks): {world_tasks}")
    step = spot.get("embedding_step", DEFAULT_EMBEDDING_STEP)
    source_steps = _steps(config, config.get("method_overrides", {}).get("spt", {}))
    target_steps = _steps(config, spot.get("training", {}))
    if step > min(source_steps, target_steps):
        raise ConfigError(f"spot.embedding_step: {step} is after the end of training (source prompts train "
                          f"{source_steps} steps, target prompts {target_steps})")
    cross = spot.get("cross_model")
    if cross:
        if cross["source"] not in spot["sources"]:
            raise ConfigError(f"spot.cross_model.source: {cross['source']!r} is not a source; "
                              f"allowed (spot.sources): {sorted(spot['sources'])}")
        if cross["backbone"]["name"] == config["backbone"]["name"]:
            raise ConfigError("spot.cross_model.backbone.name: must differ from backbone.name (it is another model)")
        room = cross["backbone"].get("max_prompt_length", BackboneShape.max_prompt_length)
        too_long = [n for n in config["prompt"]["lengths"] if n > room]
        if too_long:
            raise ConfigError(f"prompt.lengths: {too_long} longer than spot.cross_model.backbone.max_prompt_length ({room})")
    for source_task, maps in spot.get("zero_shot", {}).items():
        for target_task, mapping in maps.items():
            where = f"spot.zero_shot.{source_task}.{target_task}"
            for task in (source_task, target_task):
                if task not in world_tasks:
                    raise ConfigError(f"{where}: unknown task {task!r}; allowed (world.tasks): {world_tasks}")
            source_labels, target_labels = label_names(source_task, n_topics), label_names(target_task, n_topics)
            if sorted(mapping) != sorted(source_labels):
                raise ConfigError(f"{where}: the map must give every label of {source_task} exactly once; "
                                  f"labels: {source_labels}, mapped: {sorted(mapping)}")
            unknown = sorted(set(mapping.values()) - set(target_labels))
            if unknown:
                raise ConfigError(f"{where}: unknown {target_task} label(s) {unknown}; allowed: {target_labels}")
