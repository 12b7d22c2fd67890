"""events.parquet and calls.parquet written a block at a time, never as one frame in memory.

The tables are exactly the frames ``sim.runfolder.ledgers_events_frame`` and ``calls_frame``
build (same columns, dtypes, values and row order), written with the same parquet writer options
and row groups of ``runfolder._ROW_GROUP`` rows. Each ledger (``mocks.ledger.Ledger.blocks``) and
the call table (``CallTable.blocks``) is read one segment at a time; the ledgers' blocks are merged
in the frame's (t, system, seq) order as they come, which works because a ledger's entries are
appended in time order (checked: otherwise the whole-frame path is taken).

A column's dtype depends on the whole column (an id column with no value at all is ``object``,
``status`` with a None is ``float64``); it is decided up front from what the ledgers and the call
table know without reading their segments (shape counts, segment infos) and checked at the end.
Anything these writers do not cover exactly -- a time or a name that is not what a virtual run
records, an empty table -- raises ``Unstreamable``, and the caller builds the frame the old way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mocks.ledger import ID_BITS, Ledger, data_layout, id_offsets, unpacked
from reference_integration.metrics import _NO_STATUS, CALL_COLUMNS, CallTable
from sim.reconcile import ENTRY_COLUMNS
from sim.runfolder import _ROW_GROUP

# Rows of a ledger or call block converted at a time: the merge buffers about one such chunk per
# ledger (~0.4 KB a row as Arrow), beside the row group being filled.
_BLOCK = 1 << 14
_TEXT_TYPES = frozenset((str, type(None)))


class Unstreamable(Exception):
    """These ledgers or calls are not what the streaming writer reproduces exactly."""


# Column kinds beside numpy dtypes: TEXT is what pandas makes of a list of str (and None), NONE a
# column of nothing but None (object).
TEXT, NONE = "text", "none"


def _dtype(kind: Any) -> Any:
    if kind == TEXT:
        return pd.Series(["{}"]).dtype
    return np.dtype(object) if kind == NONE else kind


def _text(values: list[Any], kind: str) -> pd.Series:
    if not _TEXT_TYPES.issuperset(map(type, values)):
        raise Unstreamable("a text column holds something other than str or None")
    return pd.Series(values, dtype=_dtype(kind))


class _RowGroups:
    """A parquet file written in row groups of exactly ``size`` rows (the last one shorter), as
    ``DataFrame.to_parquet(row_group_size=size)`` writes a whole frame."""

    def __init__(self, path: Path, schema: pa.Schema, size: int = _ROW_GROUP) -> None:
        self.writer = pq.ParquetWriter(path, schema, compression="snappy")
        self.size = size
        self.parts: list[pa.Table] = []
        self.pending = 0
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        self.parts.append(table)
        self.pending += len(table)
        self.rows += len(table)
        if self.pending >= self.size:
            whole = pa.concat_tables(self.parts)
            at = 0
            while self.pending - at >= self.size:
                self.writer.write_table(whole.slice(at, self.size), row_group_size=self.size)
                at += self.size
            self.parts = [whole.slice(at)] if self.pending > at else []
            self.pending -= at
            del whole
            # The written groups' buffers are free now (the parts left are slices of the last
            # ones): hand mimalloc's freed pages back instead of letting them pile up.
            pa.default_memory_pool().release_unused()

    def close(self) -> int:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.parts), row_group_size=self.size)
        self.writer.close()
        return self.rows


def _schema(kinds: dict[str, Any]) -> pa.Schema:
    """The schema (pandas metadata included) ``to_parquet`` gives a frame of these column kinds."""

    def sample(k: Any) -> pd.Series:
        return pd.Series(["x"] if k == TEXT else [None] if k == NONE else [0], dtype=_dtype(k))

    return pa.Schema.from_pandas(pd.DataFrame({c: sample(k) for c, k in kinds.items()}), preserve_index=False)


# --------------------------------------------------------------------------------------- events


def write_events(ledgers: Sequence[Any], path: Path) -> int:
    """events.parquet from the ledgers' blocks; returns its rows. Raises ``Unstreamable``
    (before or while writing; the caller removes ``path``)."""
    if not ledgers or not all(type(led) is Ledger for led in ledgers):
        raise Unstreamable("not column ledgers")
    systems = [led.system for led in ledgers]
    if not all(type(s) is str for s in systems) or len(set(systems)) != len(systems):
        raise Unstreamable("ledger systems are not distinct names")
    if not sum(len(led) for led in ledgers):
        raise Unstreamable("no entries")  # the entry path's empty frame has object columns
    if not all(type(k) is str for led in ledgers for k, _, _ in led.shapes):
        raise Unstreamable("a kind that is not a str")
    # An id column is text when some entry carries that id, else all None (object).
    counted = [(bits, n) for led in ledgers for (_, bits, _), n in zip(led.shapes, led.shape_counts(), strict=True)]
    present = {name: any(n and bits & bit for bits, n in counted) for name, bit in ID_BITS.items()}
    dtypes: dict[str, Any] = {"seq": np.dtype("int64"), "t": np.dtype("float64")}
    dtypes |= {"system": TEXT, "kind": TEXT, "entity": TEXT}
    dtypes |= {name: TEXT if present[name] else NONE for name in ID_BITS}
    dtypes["data"] = TEXT
    assert tuple(dtypes) == ENTRY_COLUMNS
    schema = _schema(dtypes)
    ranks = {s: r for r, s in enumerate(sorted(systems))}
    seen = dict.fromkeys(("entity", *ID_BITS), 0)  # values that are not None, per text column
    out = _RowGroups(path, schema)
    try:
        streams = [_ledger_chunks(led, ranks[led.system], dtypes, schema, seen) for led in ledgers]
        for part in _merge(streams):
            out.add(part)
    finally:
        rows = out.close()
    if not seen["entity"] or any(bool(seen[name]) != present[name] for name in ID_BITS):
        raise Unstreamable("a text column has no value at all")
    return rows


class _Chunk:
    __slots__ = ("table", "t", "seq", "rank")

    def __init__(self, table: pa.Table, t: np.ndarray, seq: np.ndarray, rank: int) -> None:
        self.table, self.t, self.seq, self.rank = table, t, seq, rank

    def cut(self, k: int) -> tuple[_Chunk, _Chunk]:
        return (
            _Chunk(self.table.slice(0, k), self.t[:k], self.seq[:k], self.rank),
            _Chunk(self.table.slice(k), self.t[k:], self.seq[k:], self.rank),
        )


def _ledger_chunks(
    led: Ledger, rank: int, dtypes: dict[str, Any], schema: pa.Schema, seen: dict[str, int]
) -> Iterator[_Chunk]:
    """One ledger's rows of the events table, in its own order, a block at a time."""
    system, shapes = led.system, led.shapes
    kinds = [k for k, _, _ in shapes]
    offs = {name: id_offsets(shapes, bit) for name, bit in ID_BITS.items()}
    lay = data_layout(shapes)
    text = _dtype(TEXT)
    enc = json.JSONEncoder(sort_keys=True, default=str).encode  # as events_frame encodes
    last = -np.inf
    for blk in led.blocks():
        if blk.odd_t:
            raise Unstreamable("a time that is not a float")
        for lo in range(blk.head, len(blk.t), _BLOCK):
            hi = min(len(blk.t), lo + _BLOCK)
            t = np.frombuffer(blk.t, dtype=np.float64)[lo:hi].copy()
            # Sorted by (t, seq) within the ledger is what the merge relies on (NaN fails too).
            if not (t[0] >= last and (len(t) < 2 or bool(np.all(t[1:] >= t[:-1])))):
                raise Unstreamable("a ledger's entries are not in time order")
            last = t[-1]
            seq = np.arange(blk.base + blk.start + lo, blk.base + blk.start + hi, dtype=np.int64)
            shape, at, values = blk.shape[lo:hi], blk.at[lo:hi], blk.values
            cols: dict[str, pd.Series] = {"seq": pd.Series(seq), "t": pd.Series(t)}
            cols["system"] = pd.Series([system] * (hi - lo), dtype=text)
            cols["kind"] = pd.Series([kinds[s] for s in shape], dtype=text)
            cols["entity"] = _text([values[a] for a in at], dtypes["entity"])
            for name, off in offs.items():
                cols[name] = _text(
                    [values[a + o] if (o := off[s]) >= 0 else None for s, a in zip(shape, at, strict=True)],
                    dtypes[name],
                )
            data: list[str] = []
            for s, a in zip(shape, at, strict=True):
                o, keys, k = lay[s]
                a += o
                data.append(enc(dict(zip(keys, unpacked(values[a : a + k]), strict=True)) if k else {}))
            cols["data"] = pd.Series(data, dtype=text)
            for name in seen:
                seen[name] += int(cols[name].notna().sum())
            table = pa.Table.from_pandas(pd.DataFrame(cols), schema=schema, preserve_index=False)
            yield _Chunk(table, t, seq, rank)


def _merge(streams: list[Iterator[_Chunk]]) -> Iterator[pa.Table]:
    """The ledgers' rows in (t, system, seq) order. Each stream is sorted by (t, seq); rows below
    the smallest last time buffered by a stream still running can no longer be preceded by any
    row to come, so they go out (sorted) and the stream that held the others back reads on."""
    bufs: list[list[_Chunk]] = [[] for _ in streams]
    live = list(range(len(streams)))

    def pull(i: int) -> None:
        got = next(streams[i], None)
        if got is None:
            live.remove(i)
        else:
            bufs[i].append(got)

    for i in list(live):
        pull(i)
    while any(bufs):
        cutoff = min((float(bufs[i][-1].t[-1]) for i in live), default=np.inf)
        ready: list[_Chunk] = []
        for buf in bufs:
            while buf:
                k = len(buf[0].t) if cutoff == np.inf else int(np.searchsorted(buf[0].t, cutoff, side="left"))
                if k == len(buf[0].t):
                    ready.append(buf.pop(0))
                    continue
                if k:
                    head, buf[0] = buf[0].cut(k)
                    ready.append(head)
                break
        if ready:
            if len({c.rank for c in ready}) == 1:
                yield from (c.table for c in ready)
            else:
                order = np.lexsort(
                    (
                        np.concatenate([c.seq for c in ready]),
                        np.concatenate([np.full(len(c.t), c.rank) for c in ready]),
                        np.concatenate([c.t for c in ready]),
                    )
                )
                yield pa.concat_tables([c.table for c in ready]).take(order)
        if live:
            pull(min(live, key=lambda i: float(bufs[i][-1].t[-1]) if bufs[i] else -np.inf))


# --------------------------------------------------------------------------------------- calls


def write_calls(calls: Any, path: Path) -> int:
    """calls.parquet from a ``CallTable``'s blocks; returns its rows. Raises ``Unstreamable``."""
    if type(calls) is not CallTable or not len(calls):
        raise Unstreamable("not a non-empty call table")
    infos = calls.infos()
    names = calls.names
    if any(i.odd for i in infos) or not all(type(n) is str for n in names):
        raise Unstreamable("a record the typed columns do not hold")
    f64, i64 = np.dtype("float64"), np.dtype("int64")
    status_none = any(i.status_none for i in infos)
    corr_any, idem_any = any(i.corr_any for i in infos), any(i.idem_any for i in infos)
    dtypes: dict[str, Any] = {
        "t_start": f64,
        "t_end": f64,
        "system": TEXT,
        "operation": TEXT,
        "attempt": i64,
        "status": f64 if status_none else i64,
        "outcome": TEXT,
        "latency_s": f64,
        "correlation_id": TEXT if corr_any else NONE,
        "idempotency_key": TEXT if idem_any else NONE,
        "workflow": TEXT,
    }
    assert tuple(dtypes) == CALL_COLUMNS
    schema = _schema(dtypes)
    lookup = np.array(names, dtype=object)
    text = _dtype(TEXT)
    out = _RowGroups(path, schema)
    try:
        for blk in calls.blocks():
            for lo in range(0, len(blk.t0), _BLOCK):
                hi = min(len(blk.t0), lo + _BLOCK)
                t0 = np.frombuffer(blk.t0, dtype=np.float64)[lo:hi].copy()
                t1 = np.frombuffer(blk.t1, dtype=np.float64)[lo:hi].copy()
                status = np.frombuffer(blk.status, dtype=np.int32)[lo:hi].astype(np.int64)
                if status_none:
                    missing = status == _NO_STATUS
                    status = status.astype(np.float64)
                    status[missing] = np.nan
                cols = {
                    "t_start": pd.Series(t0),
                    "t_end": pd.Series(t1),
                    "system": pd.Series(lookup[np.frombuffer(blk.sys, dtype=np.uint32)[lo:hi]], dtype=text),
                    "operation": pd.Series(lookup[np.frombuffer(blk.op, dtype=np.uint32)[lo:hi]], dtype=text),
                    "attempt": pd.Series(np.frombuffer(blk.attempt, dtype=np.int32)[lo:hi].astype(np.int64)),
                    "status": pd.Series(status),
                    "outcome": pd.Series(lookup[np.frombuffer(blk.out, dtype=np.uint32)[lo:hi]], dtype=text),
                    "latency_s": pd.Series(t1 - t0),  # the same IEEE subtraction the records made
                    "correlation_id": _text(blk.corr[lo:hi], dtypes["correlation_id"]),
                    "idempotency_key": _text(blk.idem[lo:hi], dtypes["idempotency_key"]),
                    "workflow": pd.Series(lookup[np.frombuffer(blk.wf, dtype=np.uint32)[lo:hi]], dtype=text),
                }
                out.add(pa.Table.from_pandas(pd.DataFrame(cols), schema=schema, preserve_index=False))
    finally:
        rows = out.close()
    return rows
