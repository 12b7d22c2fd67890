"""A run's large tables (events, calls) kept on disk and loaded only when someone asks.

A quarter's events and calls frames are ~7 KB per order: at a million orders they alone would
not fit the run's memory budget. A virtual run streams them into parquet (``sim.stream``) and
everything inside the run -- reconciliation, KPIs, the run folder -- reads them a chunk at a time
(``chunks``). ``RunResult.events`` / ``.calls`` still give the whole DataFrame to notebooks and
tests: ``TableField`` loads it from the file on first access.
"""

from __future__ import annotations

import shutil
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim import scratch

CHUNK = 1 << 16  # rows per chunk read back (reconciliation scanned in chunks of this size before)


def _load_malloc_trim() -> Callable[[], Any]:
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return lambda: None
    return lambda: trim(0)


_malloc_trim = _load_malloc_trim()


def release_memory() -> None:
    """Give the pages the last analysis step freed back to the OS. Arrow's pool (mimalloc) keeps
    freed segments for reuse and glibc keeps freed heap pages: one pass over a 40k-order run's
    events left ~90 MiB of them behind, under every later step's peak (docs/benchmarks.md, sixth
    session). Costs a few milliseconds."""
    pa.default_memory_pool().release_unused()
    _malloc_trim()


class TempDir:
    """A directory under ``TMPDIR`` removed when this object is collected (or at exit): the home
    of a run's tables when the run has no folder of its own."""

    def __init__(self, kind: str) -> None:
        self.path = scratch.make(kind)
        self._done = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)

    def cleanup(self) -> None:
        self._done()


class TableFile:
    """One parquet file holding a whole table, row groups in table order. ``owner`` (a ``TempDir``)
    is kept alive as long as the table is, so the file is too."""

    def __init__(self, path: str | Path, rows: int, columns: Sequence[str], owner: Any = None) -> None:
        self.path = Path(path)
        self.rows = rows
        self.columns = tuple(columns)
        self.owner = owner

    def __len__(self) -> int:
        return self.rows

    @property
    def empty(self) -> bool:
        return self.rows == 0 or not self.columns

    def frame(self) -> pd.DataFrame:
        """The whole table as the DataFrame it was written from."""
        return pd.read_parquet(self.path)

    def batches(self, columns: Sequence[str] | None = None, rows: int = CHUNK) -> Iterator[pa.RecordBatch]:
        """The table ``rows`` at a time as Arrow record batches, in order (only ``columns`` when
        given). Memory stays that of a batch or two (docs/benchmarks.md, sixth session): no
        ``pre_buffer``, which reads every row group's columns ahead into buffers held until the
        reader is done (~0.5 KB an order of events for reconciliation's columns); read on this
        thread, as buffers decoded on Arrow's workers stayed in their mimalloc heaps once freed;
        and Arrow's pool trimmed between batches, as mimalloc kept freed pages instead of reusing
        them."""
        pool = pa.default_memory_pool()
        with pq.ParquetFile(self.path, pre_buffer=False) as f:
            names = None if columns is None else list(columns)
            for batch in f.iter_batches(batch_size=rows, columns=names, use_threads=False):
                yield batch
                del batch
                pool.release_unused()

    def chunks(self, columns: Sequence[str] | None = None, rows: int = CHUNK) -> Iterator[pd.DataFrame]:
        """The table ``rows`` at a time, in order (only ``columns`` when given)."""
        for batch in self.batches(columns, rows):
            yield batch.to_pandas()


Table = pd.DataFrame | TableFile


def chunks(table: Table, columns: Sequence[str] | None = None, rows: int = CHUNK) -> Iterator[pd.DataFrame]:
    """A DataFrame or a ``TableFile`` ``rows`` at a time, in order (only ``columns`` when given)."""
    if isinstance(table, TableFile):
        yield from table.chunks(columns, rows)
        return
    cols = table if columns is None else table[list(columns)]
    for k in range(0, len(table), rows):
        yield cols.iloc[k : k + rows]


def columns_of(table: Table) -> tuple[str, ...]:
    return table.columns if isinstance(table, TableFile) else tuple(table.columns)


class TableField:
    """A DataFrame attribute that may be given a ``TableFile``: the frame is read from the file on
    first access and kept. ``source(obj)`` is what was given (the file while nobody has read it),
    for writers that can copy the file instead of encoding the frame again."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.slot = f"_{name}_table"

    def __get__(self, obj: Any, objtype: type | None = None) -> pd.DataFrame:
        if obj is None:  # on the class: no default value (dataclasses ask this way)
            raise AttributeError(self.name)
        src = obj.__dict__[self.slot]
        if isinstance(src, TableFile):
            src = obj.__dict__[self.slot] = (src.frame(), src)
        return src[0] if isinstance(src, tuple) else src

    def __set__(self, obj: Any, value: Table) -> None:
        obj.__dict__[self.slot] = value

    def source(self, obj: Any) -> Table:
        """The frame when it was given or has been read (it may have been changed since), else the file."""
        src = obj.__dict__[self.slot]
        return src[0] if isinstance(src, tuple) else src
