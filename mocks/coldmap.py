"""A dict that pages idle values out to SQLite: memory bounded by what is in use, not by history.

A virtual quarter of a million orders keeps every order's documents (four cores) and workflow
state alive to the end, though an order is touched a handful of times in its life and then only
read back by a late webhook, a replay or an audit. ``ColdMap`` keeps the mapping's keys (and so
its insertion order, which iteration and therefore determinism depend on) in memory, and moves
the values that were not touched for a whole spill interval into one SQLite file per run
(``ColdStore``); reading one brings it back transparently. Nothing is lost or approximated: a
read returns a value equal to the one written, mutations through it are kept, and a run with or
without spilling is the same run.

Why by hand: the values are plain Python objects mutated in place by the cores; ``shelve`` and
``sqlitedict`` copy on every read (a mutation of what ``get`` returned would be lost), have no
idleness policy and lose insertion order. What must hold for spilling to be exact:

- nothing outside the map may keep a reference to a spilled value (it would mutate a copy
  nobody reads). ``can_spill`` checks the value's reference count by default, so a value a
  SimPy process or a queue still holds stays in memory; a map whose values share *mutable*
  inner objects with the outside must pass its own ``dumps`` / ``loads`` (``persistent_id``) or
  ``can_spill``;
- values are picklable (or ``dumps`` / ``loads`` are given); keys are ``str`` or ``int``.

Spilling happens only when ``ColdStore.spill`` is called (the run loop does it between steps,
never inside a request), so a value a caller is working on is never paged out under it.
"""

from __future__ import annotations

import pickle
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, Generic, TypeVar

K = TypeVar("K", str, int)
V = TypeVar("V")


class _Cold:
    """The marker a spilled value leaves in the map (one object: ``is`` tests it)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<cold>"


COLD: Any = _Cold()
_MISSING: Any = object()
_PROTOCOL = pickle.HIGHEST_PROTOCOL


def _dumps(value: Any) -> bytes:
    return pickle.dumps(value, _PROTOCOL)


def _refs(value: Any) -> int:
    return sys.getrefcount(value)


def _refs_in_a_map_alone() -> int:
    # What ``_refs`` sees for a value only a dict holds, looked at the way ``ColdMap.spill`` looks
    # (a loop local passed to a function): measured, not assumed, because what a frame's locals
    # and arguments count differs between CPython versions.
    d = {0: object()}
    for key in d:
        value = d[key]
        return _refs(value)
    raise AssertionError("unreachable")


_ALONE = _refs_in_a_map_alone()


def _refcount_alone(value: Any) -> bool:
    """The default ``can_spill``: nothing but the map references the value."""
    return sys.getrefcount(value) <= _ALONE  # the same depth as ``_refs`` from the probe


class ColdStats:
    __slots__ = ("spilled", "loaded", "kept", "bytes")

    def __init__(self) -> None:
        self.spilled = 0  # values written out
        self.loaded = 0  # values read back
        self.kept = 0  # idle values left in memory because something else holds them
        self.bytes = 0  # bytes written

    def as_dict(self) -> dict[str, int]:
        return {"spilled": self.spilled, "loaded": self.loaded, "kept": self.kept, "bytes": self.bytes}


class ColdMap(MutableMapping[K, V], Generic[K, V]):
    """A mutable mapping whose idle values live in a ``ColdStore``'s SQLite file.

    Idle means: not read or written since the previous ``spill``. ``get``, ``[]``, ``in`` and
    ``len`` are O(1); iterating values or items reads every spilled one back (and keeps it)."""

    __slots__ = (
        "_d",
        "_touched",
        "_resident",
        "_store",
        "_table",
        "_dumps",
        "_loads",
        "_can_spill",
        "stats",
        "__weakref__",
    )

    def __init__(
        self,
        store: ColdStore,
        table: str,
        dumps: Callable[[Any], bytes] = _dumps,
        loads: Callable[[bytes], Any] = pickle.loads,
        can_spill: Callable[[Any], bool] = _refcount_alone,
    ) -> None:
        self._d: dict[K, Any] = {}
        self._touched: set[K] = set()
        # Keys whose values stayed in memory at the previous spill (touched then, or kept). A value
        # gets into memory only by a write or a load, and both touch it, so what is in memory now
        # is this set plus ``_touched``: ``spill`` looks at those, not at every key (a run spills
        # a few hundred times and most of a big map is cold).
        self._resident: set[K] = set()
        self._store = store
        self._table = table
        self._dumps = dumps
        self._loads = loads
        self._can_spill = can_spill
        self.stats = ColdStats()

    # -- reads: a spilled value is loaded, put back in its slot (order unchanged) and touched
    def _load(self, key: K) -> Any:
        value = self._loads(self._store.read(self._table, key))
        self._d[key] = value  # replacing a value keeps the key's place in the dict's order
        self.stats.loaded += 1
        return value

    def __getitem__(self, key: K) -> V:
        value = self._d[key]
        if value is COLD:
            value = self._load(key)
        self._touched.add(key)
        return value  # type: ignore[no-any-return]

    def get(self, key: K, default: Any = None) -> Any:
        value = self._d.get(key, _MISSING)
        if value is _MISSING:
            return default
        if value is COLD:
            value = self._load(key)
        self._touched.add(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def __iter__(self) -> Iterator[K]:
        return iter(self._d)

    # -- writes
    def __setitem__(self, key: K, value: V) -> None:
        self._d[key] = value
        self._touched.add(key)

    def __delitem__(self, key: K) -> None:
        del self._d[key]  # a row left in the file is unreachable: the key is gone
        self._touched.discard(key)
        self._resident.discard(key)

    def clear(self) -> None:
        """Remove every key (rows left in the file are unreachable), in O(1) per key."""
        self._d.clear()
        self._touched.clear()
        self._resident.clear()

    def hot(self) -> int:
        """Values in memory now."""
        return sum(1 for v in self._d.values() if v is not COLD)

    # -- paging out
    def spill(self) -> int:
        """Write every value not touched since the previous call to the store and drop it from
        memory; returns how many. Values something else still references stay."""
        touched, self._touched = self._touched, set()
        candidates, self._resident = self._resident - touched, touched
        d, can_spill, dumps = self._d, self._can_spill, self._dumps
        rows: list[tuple[K, bytes]] = []
        value = None
        for key in candidates:
            value = d.get(key, COLD)  # a deleted key is gone from the candidates' map too
            if value is COLD:
                continue
            if not can_spill(value):
                self.stats.kept += 1
                touched.add(key)  # still in memory: a candidate again next time
                continue
            rows.append((key, dumps(value)))
        del value
        if rows:
            self._store.write(self._table, rows)
            for key, blob in rows:
                d[key] = COLD
                self.stats.bytes += len(blob)
            self.stats.spilled += len(rows)
        return len(rows)


CACHE_KIB = 2048  # SQLite page cache of a store


class ColdStore:
    """One SQLite file of spilled values for a run, one table per ``ColdMap``.

    The file is scratch, not a record: no journal, no fsync (a crash loses the run anyway), and
    it is deleted by ``close`` (or when the store is collected). ``directory`` defaults to a new
    temporary directory under ``TMPDIR``."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._own = directory is None
        self.dir = Path(tempfile.mkdtemp(prefix="twin-cold-")) if directory is None else Path(directory)
        self.path = self.dir / "cold.sqlite"
        self._db: sqlite3.Connection | None = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # A small page cache: SQLite's own cache is resident memory, the very thing the store is
        # there to save (16 MiB was a fifth of what paging saved at 20,000 orders), while pages
        # it does not keep are a read from the OS's file cache away.
        pragmas = ("journal_mode=OFF", "synchronous=OFF", "temp_store=MEMORY", f"cache_size=-{CACHE_KIB}")
        for pragma in pragmas:
            self._db.execute("PRAGMA " + pragma)
        self.maps: list[ColdMap[Any, Any]] = []
        self._read_sql: dict[str, str] = {}
        self._write_sql: dict[str, str] = {}

    def map(
        self,
        name: str,
        dumps: Callable[[Any], bytes] = _dumps,
        loads: Callable[[bytes], Any] = pickle.loads,
        can_spill: Callable[[Any], bool] = _refcount_alone,
    ) -> ColdMap[Any, Any]:
        """A new ``ColdMap`` spilling to its own table ``name`` (letters, digits, ``_``)."""
        if not name.replace("_", "").isalnum() or name in self._read_sql:
            raise ValueError(f"cold map name {name!r}: must be unique and made of letters, digits and _")
        db = self._conn()
        # No declared type on k: SQLite keeps ints as ints and strs as text, so both key kinds work.
        db.execute(f"CREATE TABLE {name} (k PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        self._read_sql[name] = f"SELECT v FROM {name} WHERE k = ?"
        self._write_sql[name] = f"INSERT OR REPLACE INTO {name} (k, v) VALUES (?, ?)"
        m: ColdMap[Any, Any] = ColdMap(self, name, dumps, loads, can_spill)
        self.maps.append(m)
        return m

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the cold store is closed")
        return self._db

    def read(self, table: str, key: Any) -> bytes:
        row = self._conn().execute(self._read_sql[table], (key,)).fetchone()
        if row is None:  # only a bug can get here: the marker says the row was written
            raise KeyError(f"cold map {table}: no spilled value for {key!r}")
        return bytes(row[0])

    def write(self, table: str, rows: list[tuple[Any, bytes]]) -> None:
        db = self._conn()
        db.execute("BEGIN")
        db.executemany(self._write_sql[table], rows)
        db.execute("COMMIT")

    def spill(self) -> int:
        """Page out every map's idle values; returns how many were written."""
        return sum(m.spill() for m in self.maps)

    def stats(self) -> dict[str, dict[str, int]]:
        return {m._table: m.stats.as_dict() for m in self.maps}

    def close(self) -> None:
        """Release the file. Maps with spilled values cannot read them afterwards."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._own:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            self.path.unlink(missing_ok=True)

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> ColdStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
