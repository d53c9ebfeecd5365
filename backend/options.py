"""Command-line options made from config dataclasses, so that each default and its help are
written once, on the field: `field(default=..., metadata={"help": ...})` (or `option(...)`).

    add_options(parser, TokenizerTraining, ("steps", "batch"))   # --steps, --batch
    TokenizerTraining(**picked(args, TokenizerTraining, ("steps", "batch")))
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any


def option(default: Any, help: str = "", choices: tuple | None = None) -> Any:  # noqa: A002
    """A dataclass field that the command line offers as --name (help and choices included)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def _field(cls, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def add_options(parser: argparse.ArgumentParser, cls, names: tuple[str, ...]) -> None:
    """--name for each of `cls`'s fields `names` (underscores as dashes): its type, default,
    help and choices from the field; a bool field gives --name / --no-name."""
    for name in names:
        f = _field(cls, name)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flag = "--" + name.replace("_", "-")
        words = f.metadata.get("help", "")
        help_text = f"{words} (default: {default})" if words else f"default: {default}"
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=help_text,
                                choices=f.metadata.get("choices"))


def picked(args: argparse.Namespace, cls, names: tuple[str, ...]) -> dict[str, Any]:
    """The parsed values of `cls`'s fields `names`, to build `cls(**picked(...))`."""
    return {name: getattr(args, _field(cls, name).name) for name in names}
