"""The configuration reference, ``config/README.md``: every config file, and every key of the schema with
its type, its default and what it does.

Generated, never edited by hand: the keys, types and descriptions come from
``workflow/schemas/config.schema.yaml``, the defaults from where the library keeps them (its dataclasses:
``WorldConfig``, ``BackboneShape``, ``MLMSettings``, ``TrainConfig``, ...), the config files' summaries
from their opening comments. ``tests/test_config_reference.py`` checks that the file is current.

    python -m xlprompt.config.reference > config/README.md
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CONFIGS = REPO / "config"
NAME = "<name>"  # a key the config chooses (a ticket's, a source's, a method's name)
# Sections whose keys are another section's, for one method, target or model: described as that one's.
ALIASES = {
    f"method_overrides.{NAME}.": "training.",
    "spot.training.": "training.",
    "spot.cross_model.training.": "training.",
    "spot.cross_model.backbone.": "backbone.",
    f"variants.{NAME}.": "prompt.",
}
# Sections that apply on top of another: a key left out there takes that section's value.
OVERLAYS = {f"method_overrides.{NAME}.": "training", "spot.training.": "training"}


def _fields(instance) -> dict[str, object]:
    return {field.name: getattr(instance, field.name) for field in dataclasses.fields(instance)}


def field_comments(cls) -> dict[str, str]:
    """What each field of dataclass ``cls`` is, from its source: the comment at the end of the field's line,
    else the comment lines just above it."""
    names = {field.name for field in dataclasses.fields(cls)}
    comments, above = {}, []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"(\w+): [^#]*?(?:#\s*(.*))?$", stripped)
        if match and match.group(1) in names:
            text = match.group(2) or " ".join(above)
            if text:
                comments[match.group(1)] = text
        above = []
    return comments


def _homes() -> list[tuple[str, object, dict[str, object]]]:
    """(key prefix, the dataclass instance that holds the section's defaults, extra defaults kept as constants)."""
    from xlprompt.data.world import LanguageSpec, WorldConfig
    from xlprompt.methods.ltp import TicketConfig
    from xlprompt.methods.projector import ProjectorConfig
    from xlprompt.runtime.settings import (
        BACKBONE_DTYPE,
        GROUP_SIZE,
        LTP_FINETUNE,
        LTP_FINETUNE_LANGUAGES,
        PRETRAIN_THREADS,
        BackboneShape,
        BitFitSettings,
        DeepPromptSettings,
        LoraSettings,
        MLMSettings,
        NeuronSettings,
        RunSettings,
        SpotSettings,
        TrainConfig,
    )

    projector = ProjectorConfig()
    return [
        ("", RunSettings(), {}),
        ("world.", WorldConfig(), {}),
        ("world.languages[].", LanguageSpec("en"), {}),
        ("backbone.", BackboneShape(), {"threads": PRETRAIN_THREADS, "dtype": BACKBONE_DTYPE}),
        ("backbone.", MLMSettings(), {}),
        ("spot.cross_model.backbone.", BackboneShape(), {"threads": PRETRAIN_THREADS, "dtype": BACKBONE_DTYPE}),
        ("spot.cross_model.backbone.", MLMSettings(), {}),
        ("prompt.", TrainConfig(), {}),
        ("training.", TrainConfig(), {"group_size": GROUP_SIZE}),
        ("ltp.finetune.", LTP_FINETUNE, {"languages": LTP_FINETUNE_LANGUAGES}),
        (f"ltp.tickets.{NAME}.", TicketConfig(), {}),
        ("lora.", LoraSettings(), {}),
        ("bitfit.", BitFitSettings(), {}),
        ("deep_prompt.", DeepPromptSettings(), {}),
        ("spot.", SpotSettings(), {}),
        ("spot.cross_model.", projector, {}),
        ("spot.cross_model.training.", projector, {}),
        ("neurons.", NeuronSettings(), {}),
    ]


def load_schema(path: Path = SCHEMA) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def defaults(schema: dict | None = None) -> dict[str, object]:
    """The default of every key of ``schema`` (default: the workflow's) that has one, by dotted path (``[]``:
    an item of a list, ``<name>``: a key the config names), read from where the library keeps it."""
    keys = {path for path, _, _ in rows(schema or load_schema())}
    out: dict[str, object] = {}
    for prefix, instance, extra in _homes():
        values = {**_fields(instance), **extra}
        if prefix == "world.":
            values.pop("languages")  # LanguageSpecs: a config always lists its own (required)
        # Only what a config can set: a dataclass also holds what the workflow sets per run (seed, method, ...).
        out.update({f"{prefix}{key}": value for key, value in values.items() if f"{prefix}{key}" in keys})
    return out


def comments() -> dict[str, str]:
    """What each key with a library default is, from the comment its dataclass field carries."""
    out: dict[str, str] = {}
    for prefix, instance, _ in _homes():
        for key, text in field_comments(type(instance)).items():
            out.setdefault(f"{prefix}{key}", text)
    return out


def _constraints(node: dict) -> list[str]:
    bounds = [(">=", "minimum"), (">", "exclusiveMinimum"), ("<=", "maximum"), ("<", "exclusiveMaximum")]
    out = [f"{sign} {node[key]}" for sign, key in bounds if key in node]
    if "minItems" in node and node["minItems"] > 1:
        out.append(f"at least {node['minItems']}")
    if node.get("uniqueItems"):
        out.append("distinct")
    return out


def type_of(node: dict) -> str:
    """A schema node's type in words: ``integer >= 1``, ``one of a, b``, ``list of string``."""
    if "enum" in node:
        return "one of " + ", ".join(f"`{value}`" for value in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    if "anyOf" in node:
        return " or ".join(type_of(option) for option in node["anyOf"])
    kind = node.get("type", "any")
    if kind == "array":
        kind = f"list of {type_of(node.get('items', {}))}"
    elif kind == "object" and "properties" not in node:
        values = node.get("additionalProperties")
        kind = f"mapping to {type_of(values)}" if isinstance(values, dict) else "mapping"
    return " ".join([kind, *_constraints(node)])


def _named_entries(node: dict) -> dict | None:
    """The schema of the entries a mapping names itself (a ticket, a source), if they have keys of their own."""
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) and extra.get("type") == "object" else None


def rows(node: dict, path: str = "") -> list[tuple[str, dict, bool]]:
    """(dotted path, schema node, required) of every key under ``node``, parents before their children."""
    required = node.get("required", ())
    children = [(f"{path}{key}", child, key in required) for key, child in node.get("properties", {}).items()]
    children += [(f"{path}{NAME}", child, False) for child in node.get("patternProperties", {}).values()]
    if _named_entries(node):
        children.append((f"{path}{NAME}", _named_entries(node), False))
    out = []
    for child_path, child, is_required in children:
        out.append((child_path, child, is_required))
        if child.get("type") == "array" and child.get("items", {}).get("type") == "object":
            child, child_path = child["items"], f"{child_path}[]"
        if "properties" in child or "patternProperties" in child or _named_entries(child):
            out.extend(rows(child, f"{child_path}."))
    return out


def _node(schema: dict, path: str) -> dict | None:
    """The schema node of a dotted key path (None where there is none)."""
    node = schema
    for part in path.split("."):
        node = node.get("properties", {}).get(part)
        if node is None:
            return None
    return node


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple):
        return "`[" + ", ".join(str(v) for v in value) + "]`" if value else "(see description)"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def summary(config: Path) -> str:
    """A config file's opening comment, as one paragraph."""
    lines = []
    for line in config.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return _cell(" ".join(lines))


def render(schema_path: Path = SCHEMA, config_dir: Path = CONFIGS) -> str:
    schema = load_schema(schema_path)
    known, explained = defaults(schema), comments()

    def describe(path: str) -> str:
        """The key's own comment, else the description of the key it stands for (ALIASES)."""
        if path in explained:
            return explained[path]
        for prefix, target in ALIASES.items():
            if path.startswith(prefix):
                twin = target + path.removeprefix(prefix)
                node = _node(schema, twin)
                return (node or {}).get("description") or explained.get(twin, "")
        return ""

    lines = [
        "# Configuration reference",
        "",
        "Generated by `python -m xlprompt.config.reference > config/README.md` from",
        "`workflow/schemas/config.schema.yaml` (keys, types, descriptions) and the library's defaults",
        "(`src/xlprompt/config/reference.py` says where each is kept); `tests/test_config_reference.py` checks",
        "that this file is current. Unknown keys are errors, and `xlprompt.config.checks` rejects impossible",
        "combinations before any job starts; a key left out takes the default shown. `[]` is an item of a",
        "list, `<name>` a key the config chooses.",
        "",
        "## The config files",
        "",
        "| file | what it runs |",
        "|---|---|",
    ]
    for config in sorted(config_dir.glob("*.yaml")):
        lines.append(f"| `config/{config.name}` | {summary(config)} |")
    table = ["| key | type | default | what it does |", "|---|---|---|---|"]

    def row(path: str, node: dict, is_required: bool) -> str:
        default = _value(known[path]) if path in known else ("required" if is_required else "")
        for prefix, section in OVERLAYS.items():
            if path.startswith(prefix) and "." not in path.removeprefix(prefix):
                default = f"`{section}`'s"
        description = node.get("description") or describe(path)
        return f"| `{path}` | {_cell(type_of(node))} | {default} | {_cell(description)} |"

    every = rows(schema)
    sections = [path for path, node, _ in every if "." not in path and node.get("type") == "object"]
    lines += ["", "## Keys", "", "### Top level", "", *table]
    lines += [row(path, node, req) for path, node, req in every if "." not in path and path not in sections]
    for section in sections:
        node = schema["properties"][section]
        lines += ["", f"### `{section}`" + (" (required)" if section in schema.get("required", ()) else ""), ""]
        if node.get("description"):
            lines += [_cell(node["description"]), ""]
        lines += table + [row(path, child, req) for path, child, req in every if path.startswith(f"{section}.")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
