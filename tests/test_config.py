"""Bad configs fail before any job runs, with a message naming the key and what is allowed."""

import copy
from pathlib import Path

import pytest
import yaml

from xlprompt.checks import ConfigError, validate_config

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


BAD = [
    ("unknown-top-key", mutate("learning_rate", 0.1), r"\(top level\): unknown key\(s\) \['learning_rate'\]; allowed: \[.*'training'"),
    ("misspelt-nested-key", mutate("training.step", 10), r"training: unknown key\(s\) \['step'\]; allowed: \[.*'steps'"),
    ("wrong-type", mutate("training.steps", "many"), r"training.steps: 'many' is not of type integer"),
    ("empty-seed-list", mutate("seeds", []), r"seeds: needs at least 1 item"),
    ("unknown-method", mutate("methods", ["spt", "lora"]), r"methods: unknown method 'lora'; allowed: \['spt', 'full_ft', 'ltp'"),
    ("ltp-ticket-undefined", mutate("methods", ["ltp-p05"]), r"methods: 'ltp-p05' needs a ticket 'p05' in ltp.tickets"),
    ("sparsity-above-one", mutate("ltp", {"tickets": {"default": {"sparsity": 1.5}}}), r"ltp.tickets.default.sparsity: 1.5 must be <= 1"),
    ("sparsity-zero", mutate("ltp", {"tickets": {"default": {"sparsity": 0}}}), r"ltp.tickets.default.sparsity: 0 must be > 0"),
    ("ticket-layer-out-of-range", mutate("ltp", {"tickets": {"default": {"first_layer": 5}}}), r"ltp.tickets.default: layer range 5..-1 outside the backbone's 1 layers"),
    ("unknown-task", mutate("tasks", ["topic", "qa"]), r"tasks\[1\]: 'qa' is not allowed; allowed: \['topic', 'nli', 'paraphrase'\]"),
    ("unknown-word-order", mutate("world.languages.1.word_order", "vso"), r"world.languages\[1\].word_order: 'vso' is not allowed"),
    ("unknown-eval-language", mutate("evaluation", {"languages": ["en", "de"]}), r"evaluation.languages: unknown language 'de'; allowed: \['en', 'rev', 'far'\]"),
    ("unknown-train-language", mutate("training.train_language", "xx"), r"training.train_language: unknown language 'xx'"),
    ("missing-english", mutate("world.languages", [{"code": "rev"}]), r"'en' \(the base language\) is required"),
    ("duplicate-seeds", mutate("seeds", [0, 0]), r"seeds: duplicated values in \[0, 0\]"),
    ("prompt-too-long", mutate("prompt.lengths", [100]), r"prompt.lengths: \[100\] longer than backbone.max_prompt_length \(64\)"),
    ("shared-vocab-above-one", mutate("world.languages.1.shared_vocab", 1.5), r"shared_vocab: 1.5 must be <= 1"),
    ("missing-required", mutate("world.name", KeyError), r"world: 'name' is a required property"),
    ("bad-experiment-name", mutate("experiment", "my run"), r"experiment: 'my run' must match"),
]


@pytest.mark.parametrize("change, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_is_rejected_with_a_clear_message(change, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(change(copy.deepcopy(smoke())), SCHEMA)


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "config").glob("*.yaml")))
def test_every_shipped_config_is_valid(name):
    validate_config(yaml.safe_load((REPO / "config" / name).read_text()), SCHEMA)
