"""Writing outputs so that a killed job never leaves anything that looks finished.

Every file or folder is written under a temporary name beside its target and renamed into
place when complete; rename is atomic on one file system.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:  # pandas only for the hints: importing it costs a job (or Snakemake's parse) a second
    import pandas as pd

logger = logging.getLogger(__name__)

StrPath: TypeAlias = "str | os.PathLike[str]"  # a path as callers hold it


def remove_partials(target: Path) -> None:
    """Delete what a killed writer of ``target`` left behind (``.<name>.partial-*``).

    A SIGKILL skips every ``finally``; one job writes a given target at a time, so whatever
    partial copy of it exists when the next writer starts is garbage.
    """
    for stale in target.parent.glob(f".{target.name}.partial-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(target: StrPath) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``target`` in one rename.

    An existing ``target`` is first renamed aside (not deleted), so that at every moment
    either the old or the new folder is complete under one of the two names.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_partials(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-old-", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: StrPath, mode: str = "w") -> Iterator[Any]:
    """Open a temporary file beside ``target``; it becomes ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_partials(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.partial-", dir=target.parent)
    try:
        handle: IO[Any]
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: StrPath, obj: Any) -> None:
    with atomic_file(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=False)
        handle.write("\n")


def read_json(path: StrPath) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def read_utf8(path: StrPath) -> str:
    """A text file's content; a file that is not UTF-8 is an error naming it and the byte."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path}: not UTF-8 text (byte {err.start}: {err.reason}); convert it, e.g. iconv -f <encoding> -t UTF-8"
        ) from None


def check_safetensors(path: StrPath) -> None:
    """Reject a safetensors file whose header does not account for exactly its bytes.

    A file cut short (a killed copy, a full disk) or with a damaged header fails here, with
    its name, instead of deep inside a loader.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        header_bytes = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < header_bytes <= size - 8:
            raise ValueError(f"{path}: not a complete safetensors file ({size} bytes, no valid header)")
        try:
            header = json.loads(handle.read(header_bytes))
            end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise ValueError(f"{path}: not a complete safetensors file (damaged header: {err})") from None
    if 8 + header_bytes + end != size:
        raise ValueError(
            f"{path}: not a complete safetensors file (its header describes {8 + header_bytes + end} "
            f"bytes, the file has {size})"
        )


def load_tensors(path: StrPath, expected_sha256: str | None = None) -> dict[str, Any]:
    """Tensors of a safetensors file (never pickle), checked first: complete, and when
    ``expected_sha256`` is given (recorded when the file was written), unchanged since."""
    from safetensors.torch import load_file

    check_safetensors(path)
    if expected_sha256 is not None and sha256_file(path) != expected_sha256:
        raise ValueError(
            f"{path}: its sha256 differs from the one recorded when it was written "
            "(the file was changed or damaged); rerun the job that writes it"
        )
    return load_file(path)


def sha256_file(path: StrPath, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def code_digest(path: StrPath) -> str:
    """sha256 of what a Python module does: its syntax tree without docstrings, so that reformatting it, or
    editing its comments or docstrings, keeps the digest (and what the workflow derived from the code)."""
    tree = ast.parse(read_utf8(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def sha256_tree(folder: StrPath) -> dict[str, str]:
    """sha256 of every file under ``folder``, keyed by relative path (sorted)."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def write_parquet(frame: pd.DataFrame, path: StrPath) -> None:
    """A pandas table as parquet, atomically (a killed job leaves no half-written file)."""
    with atomic_file(path, "wb") as handle:
        frame.to_parquet(handle, index=False)


def write_csv(frame: pd.DataFrame, path: StrPath) -> None:
    """A pandas table as CSV, atomically, with fixed float formatting (stable diffs)."""
    with atomic_file(path) as handle:
        frame.to_csv(handle, index=False, float_format="%.6g", lineterminator="\n")
