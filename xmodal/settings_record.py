"""Settings dataclasses that are saved in reprogrammer.json."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, fields


def _conforms(value, hint) -> bool:
    """Whether a JSON value is of the annotated type (JSON arrays stand for tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if hint is dict or origin is dict:
        return isinstance(value, dict) and (not args or all(
            _conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items()))
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(_conforms, value, args))
        return all(_conforms(v, args[0]) for v in value) if args else True
    return True


class SettingsRecord:
    """Mixin for a dataclass saved as JSON: `to_dict`, and a `from_dict` that takes exactly
    the dataclass's fields with their annotated types. A saved file is data from anywhere
    (a shared run folder): an unknown key or a wrong type is refused by name (TypeError),
    not passed on to fail somewhere inside a forward pass. Saves of a newer format are
    refused on their version before they get here."""

    @classmethod
    def from_dict(cls, values: dict):
        if not isinstance(values, dict):
            raise TypeError(f"{cls.__name__} settings must be a JSON object, got {type(values).__name__}")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"unknown {cls.__name__} setting(s) {', '.join(map(repr, unknown))}")
        for key, value in values.items():
            if not _conforms(value, hints[key]):
                raise TypeError(f"{cls.__name__} setting {key!r} should be {hints[key]}, got {value!r}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)
