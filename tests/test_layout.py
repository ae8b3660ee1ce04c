"""The layout: the library in layers, each importing only the ones below it; stages on top, never a library
to each other."""

from __future__ import annotations

import ast
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
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if (PACKAGE.parent / node.module.replace(".", "/") / f"{alias.name}.py").exists())
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("xlprompt"))
    return found


def layer_of(module: str) -> str | None:
    """The layer of ``xlprompt.<layer>.<module>`` (None for the package's own ``__init__``/``__main__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def modules() -> dict[str, Path]:
    return {".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path
            for path in sorted(PACKAGE.rglob("*.py"))}


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
        above = sorted(m for m in xlprompt_imports(path)
                       if layer_of(m) is not None and LAYERS.index(layer_of(m)) > LAYERS.index(own))
        if above:
            upward[name] = above
    assert not upward


def test_the_walk_sees_an_upward_import(tmp_path):
    """The check above can fail: an import from a higher layer, even inside a function, is found."""
    module = tmp_path / "mod.py"
    module.write_text("def f():\n    from xlprompt.analysis.metrics import accuracy\n    from xlprompt.methods import "
                      "training\n", encoding="utf-8")
    assert {"xlprompt.analysis.metrics", "xlprompt.methods.training"} <= xlprompt_imports(module)
    assert LAYERS.index(layer_of("xlprompt.analysis.metrics")) > LAYERS.index("data")


@pytest.mark.parametrize("layer", LAYERS[:-1])
def test_a_layer_has_its_docstring(layer):
    """Each layer's ``__init__`` says what lives there, for a newcomer reading the folder."""
    assert ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text(encoding="utf-8")))


def test_no_stage_imports_another_stage():
    stages = sorted((PACKAGE / "stages").glob("*.py"))
    assert len(stages) > 20
    crossing = {path.name: sorted(m for m in xlprompt_imports(path) if m.startswith("xlprompt.stages"))
                for path in stages}
    assert not {name: found for name, found in crossing.items() if found}


def test_the_library_never_imports_a_stage():
    """Only the entry point (``python -m xlprompt``) knows the stages."""
    library = {name: path for name, path in modules().items()
               if layer_of(name) not in (None, "stages")}
    assert len(library) > 40
    reaching = {name: sorted(m for m in xlprompt_imports(path) if m.startswith("xlprompt.stages"))
                for name, path in library.items()}
    assert not {name: found for name, found in reaching.items() if found}
