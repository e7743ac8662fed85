"""Checking the keys a configuration gives a process or a table: an unknown key is named, with
the known key it is closest to (``rate`` -> ``rate_hz``), so a typo stops a deployment at start
with one message instead of silently changing what runs."""

from __future__ import annotations

import difflib
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
