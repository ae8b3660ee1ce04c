"""Turning config sections (plain dicts from YAML/JSON) into checked dataclasses.

The workflow validates the whole config against workflow/schemas/config.schema.yaml before
any job runs; these functions check again so that a stage run by hand fails just as clearly.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

from xlprompt.data.world import LanguageSpec, WorldConfig

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def from_dict(cls: type[T], raw: dict[str, Any], where: str) -> T:
    """Build dataclass ``cls`` from ``raw``, naming unknown keys and the allowed ones."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    return cls(**raw)


def world_config_from_dict(raw: dict[str, Any]) -> WorldConfig:
    raw = dict(raw)
    raw.pop("name", None)  # the world's folder name, not a generation setting
    languages = tuple(from_dict(LanguageSpec, lang, "world.languages[]") for lang in raw.pop("languages", []))
    if "tasks" in raw:
        raw["tasks"] = tuple(raw["tasks"])
    return from_dict(WorldConfig, {**raw, "languages": languages}, "world")
