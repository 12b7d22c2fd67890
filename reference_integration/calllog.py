"""The live service's call records as a JSON-lines file: the calls.parquet of a live run.

The service keeps only its recent call records in memory (a long-running process must not grow
without bound); with a call log every attempt is also appended to a file, one JSON array per line
in ``CALL_COLUMNS`` order. Times are Unix seconds (the service's clock); the live harness maps them
onto the run's simulated clock. Writes are buffered and flushed every ``FLUSH_S`` and on stop, so a
SIGKILL loses at most the last second of records (and may leave half a line, which readers skip):
the ledgers, not this log, are the run's oracle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import operator
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from reference_integration.metrics import CALL_COLUMNS, CallRecord

FLUSH_S = 1.0
_row = operator.attrgetter(*CALL_COLUMNS)


class CallLog(deque[CallRecord]):
    """A bounded in-memory deque of recent call records that also appends every record to ``path``.

    It stands in for ``RuntimeStats.calls`` (which only ever ``append``s)."""

    def __init__(self, path: str | Path, keep: int) -> None:
        super().__init__(maxlen=keep)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = self.path.open("ab", buffering=1 << 16)

    def append(self, rec: CallRecord) -> None:
        super().append(rec)
        if self._file is not None:
            self._file.write(orjson.dumps(_row(rec)) + b"\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def flush_every(self, seconds: float = FLUSH_S) -> None:
        while True:
            await asyncio.sleep(seconds)
            self.flush()


def read_call_log(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a call log as dicts (``CALL_COLUMNS`` keys); torn or foreign lines are skipped."""
    p = Path(path)
    if not p.exists():
        return
    with p.open("rb") as f:
        for line in f:
            with contextlib.suppress(ValueError):
                row = json.loads(line)
                if isinstance(row, list) and len(row) == len(CALL_COLUMNS):
                    yield dict(zip(CALL_COLUMNS, row, strict=True))
