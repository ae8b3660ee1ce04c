"""What every stage's command line shares: its parser, and the start of its main()."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from xlprompt.runtime.devices import DeviceClaim, claim_device
from xlprompt.runtime.logs import setup_logging
from xlprompt.runtime.settings import BACKBONE_DTYPE

_DEVICE_CLAIM: DeviceClaim | None = None  # this process's device, kept for its lifetime


def stage_parser(stage: str, doc: str | None, threads: bool = False, dtype: bool = False) -> argparse.ArgumentParser:
    """A parser whose --help shows the stage module's docstring (what it writes, an example).

    ``threads``: the compute stages' --threads and --device; ``dtype``: --dtype, for the stages that run a
    backbone in the experiment's precision (backbone.dtype; pretraining and LTP's fine-tuning run in float32).
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m xlprompt {stage}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if threads:  # the compute stages: the workflow's GPU rules
        parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
        parser.add_argument(
            "--device",
            choices=("auto", "cpu"),
            default="auto",
            help="auto: claim a free GPU of CUDA_VISIBLE_DEVICES (xlprompt.runtime.devices), if any",
        )
    if dtype:
        parser.add_argument(
            "--dtype",
            choices=("float32", "bfloat16", "float16"),
            default=BACKBONE_DTYPE,
            help="the backbone's weights (config backbone.dtype); what trains keeps an fp32 master copy",
        )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def start(args: argparse.Namespace) -> None:
    """Logging to stderr (the job's log), torch's thread count, and a device of its own where
    the stage computes (several GPU jobs on one machine never share a device)."""
    global _DEVICE_CLAIM
    setup_logging(args.verbose)
    if getattr(args, "threads", 0):
        import torch

        torch.set_num_threads(args.threads)
    if getattr(args, "device", "cpu") == "auto" and _DEVICE_CLAIM is None:
        # Held (lock file open) until the process ends; before anything initialises CUDA.
        _DEVICE_CLAIM = claim_device()


if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
_ARG_TYPES: dict[str, type] = {"int": int, "float": float, "str": str}  # annotations are strings (postponed evaluation)


def _int_or_all(value: str) -> int | str:
    return value if value == "all" else int(value)


def _field_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"field {field.name} has no default: every setting has one (xlprompt.runtime.settings)")


def add_dataclass_flags(
    parser: argparse.ArgumentParser, cls: type[Any], skip: tuple[str, ...] = (), prefix: str = ""
) -> None:
    """One --flag per field of dataclass ``cls``, with the field's default: the CLI and the
    dataclass can never drift apart. Booleans get --flag / --no-flag; a tuple of strings (or of
    numbers, or the word all) takes several values; a field that is itself a dataclass gets its fields' flags
    under its name (TrainConfig.lora.rank: --lora-rank)."""
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        name = f"{prefix}{field.name}"
        flag = f"--{name.replace('_', '-')}"
        default = _field_default(field)
        if dataclasses.is_dataclass(default):
            add_dataclass_flags(parser, type(default), prefix=f"{name}_")
        elif field.type == "bool":
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=default)
        elif field.type == "tuple[str, ...]":
            parser.add_argument(flag, dest=name, nargs="*", default=default)
        elif field.type == "tuple[int, ...]":  # numbers, or the word all (the dataclass reads it as empty)
            parser.add_argument(flag, dest=name, nargs="*", default=default, type=_int_or_all)
        else:
            parser.add_argument(flag, dest=name, type=_ARG_TYPES[str(field.type)], default=default)


def dataclass_from_args(cls: type[T], args: argparse.Namespace, prefix: str = "") -> T:
    """The dataclass ``cls`` from the flags :func:`add_dataclass_flags` added."""
    values = {}
    for field in dataclasses.fields(cls):
        default = _field_default(field)
        if dataclasses.is_dataclass(default):
            nested: Any = type(default)
            values[field.name] = dataclass_from_args(nested, args, prefix=f"{prefix}{field.name}_")
        else:
            values[field.name] = getattr(args, f"{prefix}{field.name}")
    return cls(**values)


def named_paths(values: list[str], flag: str) -> list[tuple[str, Path]]:
    """``NAME=PATH`` arguments as (name, path) pairs; a malformed one names the flag."""
    pairs = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"{flag}: expected NAME=PATH, got {value!r}")
        pairs.append((name, Path(path)))
    return pairs
