"""Dependencies as declared: every third-party package the code imports is in pyproject.toml, every
package pyproject.toml declares is imported, and the conda files install exactly that list."""

from __future__ import annotations

import ast
import functools
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli there
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# What pip installs for a checkout (the local modules of tests/ and benchmarks/ are not packages).
FIRST_PARTY = {"xlprompt"} | {p.stem for folder in ("tests", "benchmarks") for p in (REPO / folder).glob("*.py")}
SMK_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.MULTILINE)


def normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): PyYAML == pyyaml, huggingface_hub == huggingface-hub."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*groups: str) -> set[str]:
    """Distribution names of [project].dependencies and of the named optional groups, without versions or markers."""
    requirements = list(PYPROJECT["project"]["dependencies"])
    for group in groups:
        requirements += PYPROJECT["project"]["optional-dependencies"][group]
    return {normalized(re.match(r"[A-Za-z0-9._-]+", requirement).group()) for requirement in requirements}


def top_level_imports(source: str) -> set[str]:
    """Absolute imports of a Python source, top-level names only (``from a.b import c`` -> ``a``)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


# The type checker's view of the standard library (typeshed), imported for hints only (if TYPE_CHECKING).
TYPE_CHECKER_STDLIB = {"_typeshed"}


def third_party(names: set[str]) -> set[str]:
    return {
        name
        for name in names
        if name not in sys.stdlib_module_names and name not in TYPE_CHECKER_STDLIB and name not in FIRST_PARTY
    }


def imports_of(folder: str) -> set[str]:
    return third_party(set().union(*(top_level_imports(p.read_text()) for p in (REPO / folder).rglob("*.py"))))


@functools.cache
def installed() -> dict[str, list[str]]:
    return metadata.packages_distributions()  # reads every installed distribution's file list: once


def distributions(import_name: str) -> set[str]:
    """The installed distributions that provide an import name (yaml -> pyyaml, sklearn -> scikit-learn)."""
    provided = installed().get(import_name)
    assert provided, f"{import_name!r} is imported but no installed distribution provides it"
    return {normalized(name) for name in provided}


def undeclared(names: set[str], allowed: set[str]) -> dict[str, set[str]]:
    return {name: distributions(name) for name in sorted(names) if not distributions(name) & allowed}


def test_the_import_scan_sees_plain_dotted_and_nested_imports():
    source = (
        "import os\nimport numpy as np\nfrom yaml import safe_load\n"
        "def f():\n    from huggingface_hub.errors import X\n"
        "from . import sibling\nfrom xlprompt.runtime.io import write_json\n"
    )
    assert third_party(top_level_imports(source)) == {"numpy", "yaml", "huggingface_hub"}
    assert distributions("yaml") == {"pyyaml"}  # an import name that is not its distribution's name


def test_every_package_the_library_imports_is_declared():
    assert undeclared(imports_of("src/xlprompt"), declared()) == {}


def test_every_declared_dependency_is_imported_by_the_library():
    used = set().union(*(distributions(name) for name in imports_of("src/xlprompt")))
    assert declared() - used == set()


def test_the_workflow_tests_and_benchmarks_import_only_declared_packages():
    rules = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    workflow = third_party(
        {
            (match.group(1) or match.group(2)).split(".")[0]
            for path in rules
            for match in SMK_IMPORT.finditer(path.read_text())
        }
    )
    assert "snakemake" in workflow  # the scan reads Snakemake files (the Snakefile's min_version)
    assert undeclared(workflow, declared("workflow")) == {}
    everything = declared("workflow", "test")
    assert undeclared(imports_of("tests") - {"tomli"}, everything) == {}  # tomli: Python 3.10 only, not installed here
    assert undeclared(imports_of("benchmarks"), everything) == {}


@pytest.mark.parametrize("path", ["environment.yml", "workflow/envs/xlprompt.yaml"])
def test_the_conda_environments_install_the_project_and_only_the_pinned_torch_besides(path):
    """The package list lives in pyproject.toml alone: each conda file installs the checkout with its
    extras and, before it, the torch the Makefile pins (pip must not pick another build)."""
    environment = yaml.safe_load((REPO / path).read_text())
    pip = next(entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict))
    makefile_torch = re.search(r"^TORCH_SPEC \?= (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE).group(1)
    assert pip[0] == makefile_torch
    assert len(pip) == 2, pip
    assert re.fullmatch(r"-e (\.|\.\./\.\.)\[workflow(,test)?\]", pip[1]), pip
    conda = [entry for entry in environment["dependencies"] if isinstance(entry, str)]
    assert {entry.split("=")[0] for entry in conda} == {"python", "pip"}
