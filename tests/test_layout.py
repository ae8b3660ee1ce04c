"""The layout: stages are entry points on top of the library, never a library to each other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "xlprompt"


def xlprompt_imports(path: Path) -> set[str]:
    """The xlprompt modules a file imports (``from xlprompt.x import y`` and ``import xlprompt.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xlprompt"):
            found.add(node.module)
            if node.module == "xlprompt.stages":  # from xlprompt.stages import plot
                found.update(f"xlprompt.stages.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("xlprompt"))
    return found


def test_no_stage_imports_another_stage():
    stages = sorted((PACKAGE / "stages").glob("*.py"))
    assert len(stages) > 20
    crossing = {path.name: sorted(m for m in xlprompt_imports(path) if m.startswith("xlprompt.stages"))
                for path in stages}
    assert not {name: found for name, found in crossing.items() if found}


def test_the_library_never_imports_a_stage():
    """Only the entry point (``python -m xlprompt``) knows the stages."""
    library = [p for p in PACKAGE.glob("*.py") if p.name != "__main__.py"]
    assert len(library) > 30
    reaching = {p.name: sorted(m for m in xlprompt_imports(p) if m.startswith("xlprompt.stages")) for p in library}
    assert not {name: found for name, found in reaching.items() if found}
