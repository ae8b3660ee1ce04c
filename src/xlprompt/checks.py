"""Checks of a whole experiment config that a JSON Schema cannot express.

The workflow runs the schema first (types, ranges, unknown keys), then :func:`check_config`
(relations between keys), before any job is scheduled. Each error names the key, the bad
value and what is allowed.
"""

from __future__ import annotations

from typing import Any

from xlprompt.train import METHODS
from xlprompt.world import TASKS


class ConfigError(ValueError):
    """A config value that is not allowed; the message says which and why."""


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
    for method in config["methods"]:
        if method not in METHODS:
            raise ConfigError(f"methods: unknown method {method!r}; allowed: {list(METHODS)}")
    train_language = config.get("training", {}).get("train_language", "en")
    if train_language not in codes:
        raise ConfigError(f"training.train_language: unknown language {train_language!r}; allowed: {codes}")
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
    room = backbone.get("max_prompt_length", 64)
    too_long = [n for n in lengths if n > room]
    if too_long:
        raise ConfigError(
            f"prompt.lengths: {too_long} longer than backbone.max_prompt_length ({room}), "
            "the longest prompt the backbone's position table has room for")
    n_topics = world.get("n_topics", 6)
    if world.get("generic_nouns", 16) < n_topics:
        raise ConfigError("world.generic_nouns must be >= world.n_topics (generic nouns are the verbalizer words)")
