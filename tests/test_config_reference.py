"""One home for every default: config/README.md is generated from the schema and the library's defaults, and
every other place that states a default (the schema's descriptions, the stages' command lines, the
workflow's rules) agrees with the library's."""

from __future__ import annotations

import re

import pytest
import yaml
from test_config import REPO, SCHEMA

from xlprompt.config import reference as config_reference
from xlprompt.config.reference import ALIASES, NAME, defaults, render, rows, type_of
from xlprompt.methods.ltp import TicketConfig
from xlprompt.runtime.settings import LTP_FINETUNE, BackboneShape, MLMSettings, NeuronSettings, TrainConfig

SCHEMA_TREE = yaml.safe_load(SCHEMA.read_text())


def test_config_readme_is_the_generated_reference():
    written = (REPO / "config" / "README.md").read_text()
    assert written == render(), "config/README.md is stale: python -m xlprompt.config.reference > config/README.md"


def test_the_reference_names_every_key_and_every_config_file():
    text = render()
    paths = [path for path, _, _ in rows(SCHEMA_TREE)]
    assert len(paths) > 150  # every section's keys, nested ones included
    sections = [key for key, node in SCHEMA_TREE["properties"].items() if node.get("type") == "object"]
    for path in paths:
        assert (f"### `{path}`" if path in sections else f"| `{path}` |") in text, path
    for config in (REPO / "config").glob("*.yaml"):
        assert f"| `config/{config.name}` |" in text, config.name
    assert "ltp.tickets.<name>.sparsity" in paths
    assert "world.languages[].shared_vocab" in paths
    assert "spot.cross_model.backbone.layers" in paths
    assert f"method_overrides.{NAME}.lr" in paths


def test_every_key_says_what_it_does():
    """From the schema's description, the comment of the dataclass field that holds its default, or the key
    it stands for (method_overrides.<name>.lr is training.lr for one method)."""
    keys = [line for line in render().split("## Keys")[1].splitlines() if line.startswith("| `")]
    assert len(keys) > 150
    cells = [re.split(r"(?<!\\)\|", line) for line in keys]  # | key | type | default | what it does |
    assert all(len(row) == 6 for row in cells)
    undescribed = [row[1].strip() for row in cells if not row[4].strip()]
    assert not undescribed, undescribed


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("training.steps", TrainConfig.steps),
        ("training.group_size", 8),
        ("prompt.vocab_top_k", 5000),
        ("backbone.layers", BackboneShape.layers),
        ("backbone.steps", MLMSettings.steps),
        ("ltp.finetune.steps", 200),
        ("ltp.finetune.lr", 1e-4),
        (f"ltp.tickets.{NAME}.sparsity", TicketConfig.sparsity),
        ("neurons.window", 3),
        ("neurons.mask_share", 0.2),
        ("spot.embedding_step", 100),
        ("threads", 1),
    ],
)
def test_defaults_are_read_from_the_library(path, expected):
    assert defaults()[path] == expected


def test_types_read_as_words():
    assert type_of({"type": "integer", "minimum": 1}) == "integer >= 1"
    assert type_of({"enum": ["a", "b"]}) == "one of `a`, `b`"
    assert (
        type_of({"anyOf": [{"const": "all"}, {"type": "array", "items": {"type": "integer"}}]})
        == "`all` or list of integer"
    )
    assert type_of({"type": "number", "exclusiveMinimum": 0, "maximum": 1}) == "number > 0 <= 1"


def _stated_defaults() -> dict[str, str]:
    """'default X' in the schema's descriptions, by key path: X as written."""
    stated = {}
    for path, node, _ in rows(SCHEMA_TREE):
        match = re.search(r"\(default ([^,;:)\s]+)", node.get("description", ""))
        if match:
            stated[path] = match.group(1)
    return stated


def test_the_defaults_the_schema_states_are_the_librarys():
    stated = _stated_defaults()
    assert len(stated) >= 8
    known, paths = defaults(), {path for path, _, _ in rows(SCHEMA_TREE)}
    for path, text in stated.items():
        if text in paths:  # "default training.train_language": that key's value
            continue
        # a section that repeats another's keys (its YAML anchor) states that one's defaults
        twin = next(
            (
                target + path.removeprefix(prefix)
                for prefix, target in ALIASES.items()
                if path.startswith(prefix) and target + path.removeprefix(prefix) in known
            ),
            path,
        )
        assert twin in known, f"{path}: the schema states default {text}, the library keeps none"
        value = known[twin]
        if isinstance(value, bool):
            assert text == str(value).lower(), path
        elif isinstance(value, (int, float)):
            assert float(text) == value, (path, text, value)
        else:
            assert text == str(value), (path, text, value)


def test_the_stages_command_lines_take_the_librarys_defaults():
    """Flags that set a library default take it from the library (or name it)."""
    from xlprompt.stages import finetune_mlm, neuron_masking, prompt_activations, similarity

    finetune = vars(finetune_mlm.build_parser().parse_args(["--backbone", "b", "--text", "t", "--out", "o"]))
    for key, value in config_reference._fields(LTP_FINETUNE).items():
        assert finetune[key] == value, key
    neurons = NeuronSettings()
    assert similarity.build_parser().get_default("window") == neurons.window
    assert prompt_activations.build_parser().get_default("mode") == neurons.mode
    assert prompt_activations.build_parser().get_default("examples") == neurons.examples
    assert neuron_masking.build_parser().get_default("share") == neurons.mask_share


def test_the_workflow_reads_its_defaults_from_the_library():
    """No default of a library setting is written into the rules as a number or a word of their own:
    `.get("window", NEURONS_DEFAULTS.window)`, never `.get("window", 3)`."""
    rules = {p.name: p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk")}
    keys = "threads|window|examples|mask_share|mode|random_init|embedding_step|group_size"
    pattern = re.compile(rf"""\.get\(["']({keys})["'],\s*[0-9"'\[]""")
    found = {name: pattern.findall(text) for name, text in rules.items()}
    assert not any(found.values()), found
    assert any(re.search(rf"""\.get\(["']({keys})["'],""", text) for text in rules.values())  # the pattern reads them
