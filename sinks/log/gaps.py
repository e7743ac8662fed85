"""Counting what was lost upstream, from sequence numbers and drop counters.

Every publisher numbers its messages per source (``seq`` = 1, 2, 3 ...). A sink that stores
seq 7 and then seq 11 of one stream knows that 8..10 never reached it: that is a gap of 3, and
the log keeps it as a row so that a record count can always be reconciled with what was sent.
The last seq per stream is stored in the same transaction as the records, so a sink killed and
restarted counts the messages published while it was down (and the ones it had received but
not yet committed) as a gap too, instead of silently missing them.

A seq that goes down (not a duplicate: duplicates never reach the book) means the source
restarted and began again at 1; it is counted as a reset and no gap is claimed for it, because
a late message and a restarted source cannot be told apart from the number alone.

Status messages carry a process's own cumulative ``dropped_upstream`` count (e.g. skeletons a
worker never got); its increase becomes a gap of stream ``upstream`` for that process.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinks.log.records import UPSTREAM_STREAM, Record
from streams.schema import MAX_SEQ_GAP


@dataclass(frozen=True)
class Gap:
    stream: str
    source: str
    first_seq: int
    last_seq: int

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1


@dataclass
class SourceState:
    last_seq: int
    resets: int = 0


class SeqBook:
    """Last seq per (stream, source); turns jumps into :class:`Gap` values.

    ``dirty`` names the entries changed since the last :meth:`clean`, which a store writes back
    in the transaction that stored the records; :meth:`snapshot` / :meth:`restore` undo the
    in-memory side when that transaction fails.
    """

    def __init__(self, state: dict[tuple[str, str], SourceState] | None = None):
        self.state: dict[tuple[str, str], SourceState] = dict(state or {})
        self.dirty: set[tuple[str, str]] = set()

    def observe_seq(self, stream: str, source: str, seq: int) -> Gap | None:
        """A newly stored message of ``stream`` from ``source`` (never a duplicate)."""
        key = (stream, source)
        st = self.state.get(key)
        self.dirty.add(key)
        if st is None:  # first sight: what came before the sink existed is not a loss
            self.state[key] = SourceState(seq)
            return None
        gap = None
        if st.last_seq + 1 < seq <= st.last_seq + 1 + MAX_SEQ_GAP:
            gap = Gap(stream, source, st.last_seq + 1, seq - 1)
        elif seq <= st.last_seq or seq > st.last_seq + 1 + MAX_SEQ_GAP:
            st.resets += 1  # restarted, or a jump no real loss explains
        st.last_seq = seq
        return gap

    def observe_drop_counter(self, process: str, value: float) -> Gap | None:
        """A process's cumulative upstream-drop counter, as its Status reported it (a value that
        is no count, or jumps by more than MAX_SEQ_GAP, is not taken for a loss)."""
        if not (0 <= value < 1 << 62):  # negative, absurd or not finite (NaN fails both)
            return None
        n = int(value)
        key = (UPSTREAM_STREAM, process)
        st = self.state.get(key)
        self.dirty.add(key)
        if st is None:
            st = self.state[key] = SourceState(0)
        if n < st.last_seq:  # the process restarted: its counter began again at 0
            st.resets += 1
            st.last_seq = 0
        gap = None
        if n - st.last_seq > MAX_SEQ_GAP:
            st.resets += 1
        elif n > st.last_seq:
            gap = Gap(UPSTREAM_STREAM, process, st.last_seq + 1, n)
        st.last_seq = n
        return gap

    def observe(self, r: Record, stored: bool) -> list[Gap]:
        """The gaps one record of a batch shows: its sequence number when it was stored (a
        duplicate says nothing new) and the drop counter it carries."""
        gaps = []
        if stored and r.stream is not None:
            gaps.append(self.observe_seq(r.stream, r.source, r.seq))
        if r.drop_counter is not None:
            gaps.append(self.observe_drop_counter(r.source, r.drop_counter))
        return [g for g in gaps if g is not None]

    def snapshot(self) -> dict[tuple[str, str], SourceState]:
        return {k: SourceState(v.last_seq, v.resets) for k, v in self.state.items()}

    def restore(self, snap: dict[tuple[str, str], SourceState]) -> None:
        self.state = snap

    def clean(self) -> list[tuple[str, str, SourceState]]:
        out = [(k[0], k[1], self.state[k]) for k in sorted(self.dirty) if k in self.state]
        self.dirty.clear()
        return out
