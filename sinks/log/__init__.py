"""The log: every cycle, event, alert and (thinned) status, durably and idempotently, in SQLite,
PostgreSQL or a JSON Lines file. :func:`open_store` is the one way to open a store."""

from __future__ import annotations

import os
from typing import Any

from sinks.log.store import Store, is_postgres_url

STORE_KINDS = ("sqlite", "postgresql", "jsonl")


def store_kind(target: str | os.PathLike) -> str:
    """The kind of store a target names: a ``postgresql://`` URL, a ``.jsonl`` path, else SQLite."""
    t = str(target)
    if is_postgres_url(t):
        return "postgresql"
    return "jsonl" if t.endswith(".jsonl") else "sqlite"


def open_store(target: str | os.PathLike, kind: str | None = None, **options: Any) -> Store:
    """The store at ``target``, of ``kind`` (default: what the target names, :func:`store_kind`).
    ``options`` go to the SQLite store (``busy_timeout_s``, ``synchronous``), or to the others."""
    kind = kind or store_kind(target)
    if kind == "postgresql":
        from sinks.log.sql import postgres_store

        return postgres_store(str(target), **options)
    if kind == "jsonl":
        from sinks.log.jsonl import JsonlStore

        return JsonlStore(target, **options)
    if kind == "sqlite":
        from sinks.log.sql import sqlite_store

        return sqlite_store(target, **options)
    raise ValueError(f"unknown store kind {kind!r}: one of {STORE_KINDS}")
