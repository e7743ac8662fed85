"""The log store interface: ``write(records)`` stores a batch durably and idempotently. The
stores are SQLite and PostgreSQL (:mod:`sinks.log.sql`) and JSON Lines (:mod:`sinks.log.jsonl`);
:func:`sinks.log.open_store` opens the one a target names.

``write`` stores a batch in ONE transaction and returns only after the commit, so a batch is all
stored or not stored at all, and the sequence bookkeeping (:mod:`sinks.log.gaps`) is committed with
it. Each table has a content key (:data:`sinks.log.records.TABLE_KEYS`): writing a batch twice (a
retry after an error whose commit did in fact happen, a redelivered message) stores each record once.

Errors come in two kinds. :class:`StoreUnavailable` (locked, busy, disk full, I/O error,
connection lost): nothing of the batch was stored; the caller keeps it and retries later. A record
the database refuses is stored without; it comes back in ``WriteResult.rejected`` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sinks.log.gaps import Gap
from sinks.log.records import Record


class StoreUnavailable(RuntimeError):
    """The database cannot take writes right now (locked, full, down); nothing was stored."""


@dataclass
class WriteResult:
    inserted: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    gaps: list[Gap] = field(default_factory=list)
    rejected: list[tuple[Record, str]] = field(default_factory=list)

    @property
    def written(self) -> int:
        return sum(self.inserted.values())


class Store(Protocol):
    kind: str

    def write(self, records: list[Record]) -> WriteResult: ...

    def close(self) -> None: ...


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))
