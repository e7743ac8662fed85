"""Checking the keys a configuration gives a process or a table: an unknown key is named, with
the known key it is closest to (``rate`` -> ``rate_hz``), so a typo stops a deployment at start
with one message instead of silently changing what runs."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Iterable


def unknown_keys_message(where: str, given: Iterable[str], allowed: Iterable[str]) -> str | None:
    """None when every key of ``given`` is allowed; else one line naming each unknown key (with
    the closest allowed one where there is one) and the allowed keys."""
    allowed = sorted(set(allowed))
    unknown = sorted(set(given) - set(allowed))
    if not unknown:
        return None
    named = []
    for k in unknown:
        close = difflib.get_close_matches(k, allowed, n=1, cutoff=0.6)
        named.append(f"{k!r} (did you mean {close[0]!r}?)" if close else repr(k))
    return (f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(named)}; "
            f"allowed: {', '.join(allowed)}")


def check_keys(where: str, given: Iterable[str], allowed: Iterable[str],
               error: type[Exception] = ValueError) -> None:
    """Raise ``error`` with :func:`unknown_keys_message` when a key is unknown."""
    msg = unknown_keys_message(where, given, allowed)
    if msg:
        raise error(msg)


def _fits(value: object, hint: object) -> bool:
    """Whether a TOML value fits a dataclass field's type (bool is no number; a list stands in
    for a tuple; an int for a float)."""
    origin = typing.get_origin(hint)
    if hint is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and all(
            any(_fits(v, a) for a in args) for v in value) if args else isinstance(
                value, (list, tuple))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True  # a type this check does not know (a nested config): its own parser checks it


def check_types(where: str, given: dict, cls: type, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` naming the key when a value does not fit the type of ``cls``'s field of
    that name: ``allow_remote = "false"`` is a string, not a false boolean."""
    hints = typing.get_type_hints(cls)
    for key, value in given.items():
        hint = hints.get(key)
        if hint is not None and not _fits(value, hint):
            raise error(f"{where}: {key} = {value!r} is a {type(value).__name__}, "
                        f"expected {_name(hint)}")


def _name(hint: object) -> str:
    if typing.get_origin(hint) is not None:
        return str(hint).replace("typing.", "").replace("NoneType", "None")
    return getattr(hint, "__name__", str(hint))
