"""The layout: the library in layers, each importing only the ones below it; stages on top, never a library
to each other."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "xlprompt"
# Lowest first: a module may import its own layer and the layers before it, never one after it.
LAYERS = ("runtime", "data", "models", "methods", "analysis", "config", "stages")


def xlprompt_imports(path: Path) -> set[str]:
    """The xlprompt modules a file imports (``from xlprompt.x import y``, ``from xlprompt.x import module`` and
    ``import xlprompt.x``), module-level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xlprompt"):
            found.add(node.module)
            # from xlprompt.stages import plot, from xlprompt.methods import training: modules by name
            found.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if (PACKAGE.parent / node.module.replace(".", "/") / f"{alias.name}.py").exists()
            )
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("xlprompt"))
    return found


def layer_of(module: str) -> str | None:
    """The layer of ``xlprompt.<layer>.<module>`` (None for the package's own ``__init__``/``__main__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_every_module_lives_in_a_layer():
    """Nothing computes beside the layers: the package's top level holds only its docstring and entry point."""
    loose = sorted(name for name in modules() if layer_of(name) is None)
    assert loose == ["xlprompt.__init__", "xlprompt.__main__"]
    assert {layer_of(name) for name in modules()} - {None} == set(LAYERS)


def test_lower_layers_never_import_higher_ones():
    found = modules()
    assert len(found) > 50
    upward = {}
    for name, path in found.items():
        own = layer_of(name)
        if own is None:
            continue
        above = sorted(
            m
            for m in xlprompt_imports(path)
            if layer_of(m) is not None and LAYERS.index(layer_of(m)) > LAYERS.index(own)
        )
        if above:
            upward[name] = above
    assert not upward


def test_the_walk_sees_an_upward_import(tmp_path):
    """The check above can fail: an import from a higher layer, even inside a function, is found."""
    module = tmp_path / "mod.py"
    module.write_text(
        "def f():\n    from xlprompt.analysis.metrics import accuracy\n    from xlprompt.methods import training\n",
        encoding="utf-8",
    )
    assert {"xlprompt.analysis.metrics", "xlprompt.methods.training"} <= xlprompt_imports(module)
    assert LAYERS.index(layer_of("xlprompt.analysis.metrics")) > LAYERS.index("data")


@pytest.mark.parametrize("layer", LAYERS[:-1])
def test_a_layer_has_its_docstring(layer):
    """Each layer's ``__init__`` says what lives there, for a newcomer reading the folder."""
    assert ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text(encoding="utf-8")))


def test_no_stage_imports_another_stage():
    stages = sorted((PACKAGE / "stages").glob("*.py"))
    assert len(stages) > 20
    crossing = {
        path.name: sorted(m for m in xlprompt_imports(path) if m.startswith("xlprompt.stages")) for path in stages
    }
    assert not {name: found for name, found in crossing.items() if found}


def test_the_library_never_imports_a_stage():
    """Only the entry point (``python -m xlprompt``) knows the stages."""
    library = {name: path for name, path in modules().items() if layer_of(name) not in (None, "stages")}
    assert len(library) > 40
    reaching = {
        name: sorted(m for m in xlprompt_imports(path) if m.startswith("xlprompt.stages"))
        for name, path in library.items()
    }
    assert not {name: found for name, found in reaching.items() if found}


# A stage parses its arguments, calls the library and writes what it returns. train_prompt's helpers only
# parse: one prompt's flags, repeated per --run.
STAGE_FUNCTIONS = {"main", "build_parser"}
ARGUMENT_PARSING = {"train_prompt": {"add_run_flags", "run_of", "parse_runs"}}


def test_stages_are_thin():
    stages = sorted(p for p in (PACKAGE / "stages").glob("*.py") if p.name != "__init__.py")
    thick = {}
    for path in stages:
        defined = {
            node.name
            for node in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))
        }
        assert "main" in defined, path.name
        extra = defined - STAGE_FUNCTIONS - ARGUMENT_PARSING.get(path.stem, set())
        if extra:
            thick[path.name] = sorted(extra)
    assert not thick


def test_tests_and_benchmarks_take_logic_from_the_library():
    """Whatever a test or benchmark calls besides a stage's command line lives in the library."""
    root = PACKAGE.parents[1]
    allowed = STAGE_FUNCTIONS | set().union(*ARGUMENT_PARSING.values())
    reaching = {}
    for path in sorted([*(root / "tests").glob("*.py"), *(root / "benchmarks").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xlprompt.stages."):
                names = {alias.name for alias in node.names} - allowed
                if names:
                    reaching.setdefault(path.name, set()).update(names)
    assert not reaching


def test_docs_name_each_stage_s_library_function():
    """docs/workflow.md's table (stage -> library function) is what the stages import."""
    text = (PACKAGE.parents[1] / "docs" / "workflow.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `(\w+)` \| `([\w.]+)` \|", text, flags=re.MULTILINE))
    stages = {p.stem for p in (PACKAGE / "stages").glob("*.py") if p.name != "__init__.py"}
    assert set(table) == stages
    wrong = {}
    for stage, dotted in table.items():
        module, name = f"xlprompt.{dotted}".rsplit(".", 1)
        imported = {
            (node.module, alias.name)
            for node in ast.walk(ast.parse((PACKAGE / "stages" / f"{stage}.py").read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        if (module, name) not in imported:
            wrong[stage] = dotted
    assert not wrong
