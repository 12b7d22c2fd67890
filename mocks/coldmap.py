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

Objects many values hold on purpose (one address dict for every order shipping there) are
registered with ``ColdStore.share``; a map given ``store.dumps_refs`` / ``store.loads_refs``
stores such a field of a dict value as a reference into the table, so it comes back as the very
same object, and ``store.alone`` (a deeper ``can_spill``) refuses a value any of whose other
mutable inner objects something outside holds.

Keys cost memory too: a key string, its dict slot and its entry in the interpreter's intern table
are ~100-150 B per order per map, for every order of the quarter, paged out or not. A map given a
``KeyCodec`` (the cores' ids are a prefix and a sequence number) keeps the values of the keys the
codec numbers in a list by number, with holes where a number has no key: no key string, no dict
slot, ~8 B an order. Keys come roughly in sequence (a core mints them so; the integration's order
states are written as the orders' webhooks arrive, a little out of order): insertion order is
then the numbers ascending and costs nothing; once it is not, it is kept as an array of numbers
(8 B more an order). ``str`` keys of another form (the integration's hourly buckets) go in a dict
beside the list. A delete, a key of another type or a number far out of the list's range turns
the map into the dict it stands for, for good; it behaves as that dict either way.

Spilling happens only when ``ColdStore.spill`` is called (the run loop does it between steps,
never inside a request), so a value a caller is working on is never paged out under it.
"""

from __future__ import annotations

import itertools
import pickle
import shutil
import sqlite3
import sys
from array import array
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from sim import scratch

K = TypeVar("K", str, int)
V = TypeVar("V")


class _Cold:
    """The marker a spilled value leaves in the map (one object: ``is`` tests it)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<cold>"


COLD: Any = _Cold()
_MISSING: Any = object()
# A number a numbered map has no key for (``ColdMap._vals``).
_ABSENT: Any = object()


class KeyCodec(Protocol):
    """Keys of one form as numbers: ``number(key)`` is ``n`` exactly when ``key == key(n)`` (an
    equal string, not merely one that parses to ``n``), None for anything else; ``n >= 0``."""

    def number(self, key: Any) -> int | None: ...

    def key(self, number: int) -> Any: ...


_PROTOCOL = pickle.HIGHEST_PROTOCOL
# SQLite's page cache is resident memory holding copies of what was just paged out: keep it small;
# a miss is a read from the OS's file cache.
CACHE_KIB = 2048


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


def _inner_refs_alone() -> int:
    # What ``sys.getrefcount`` says, inside ``ColdStore.alone``'s loops, of an object only its
    # container holds (measured as ``_ALONE`` is, with the same loop shapes).
    counts = []
    for child in [[]]:
        counts.append(sys.getrefcount(child))
    for child in {0: []}.values():
        counts.append(sys.getrefcount(child))
    return max(counts)


_INNER_ALONE = _inner_refs_alone()
# Immutable and holding nothing: what they are shared with cannot change them.
_ATOMS: frozenset[type] = frozenset({str, int, float, bool, type(None), bytes, complex})
_MUTABLE: frozenset[type] = frozenset({dict, list, set, bytearray})
_WALKED: frozenset[type] = frozenset({dict, list, set, tuple, frozenset})
_SHAPE = b"S"  # first byte of a ``dumps_refs`` blob of a dict by shape (a pickle's is 0x80)
_SHAPE_TAG = _SHAPE[0]
MAX_SHAPES = 4096  # dict shapes a store remembers for ``dumps_refs`` (more are pickled whole)


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
        "_codec",
        "_vals",
        "_first",
        "_count",
        "_last",
        "_order",
        "_touched",
        "_earlier",
        "_hot",
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
        idle_spills: int = 1,
        codec: KeyCodec | None = None,
    ) -> None:
        if idle_spills < 1:
            raise ValueError("idle_spills must be at least 1")
        # The dict form: every key. The numbered form: the ``str`` keys the codec does not number.
        self._d: dict[K, Any] = {}
        # Numbered form (a codec): ``_vals[n - _first]`` is the value of the key numbered ``n``,
        # ``_ABSENT`` where there is none; ``_count`` of them are present. None: the dict form.
        self._codec = codec
        self._vals: list[Any] | None = None if codec is None else []
        self._first = 0
        self._count = 0
        self._last = -1  # the highest number present
        # Insertion order, once it is not simply the numbers ascending (a number below ``_last``
        # came, or a key of another form): a number per numbered key, -1 for the next of ``_d``.
        self._order: array[int] | None = None
        # Below, "slot": a key (dict form; ``_d``'s keys in the numbered form) or a number.
        self._touched: set[Any] = set()
        # What was touched in each of the previous ``idle_spills - 1`` intervals: not idle yet.
        self._earlier: list[set[Any]] = [set() for _ in range(idle_spills - 1)]
        # Slots whose value is in memory: what ``spill`` looks at. Walking every key instead made
        # each spill cost the whole history (a quarter's million orders, 200+ times a run).
        self._hot: set[Any] = set()
        self._store = store
        self._table = table
        self._dumps = dumps
        self._loads = loads
        self._can_spill = can_spill
        self.stats = ColdStats()

    # -- the numbered form
    def _sql_key(self, key: Any) -> Any:
        # A key the codec numbers is stored by its number in either form, so turning numbered
        # into a dict leaves every row where it is.
        if self._codec is not None:
            n = self._codec.number(key)
            if n is not None:
                return n
        return key

    def _number_keys(self) -> Iterator[tuple[Any, int]]:
        """(key, number) in insertion order, the number -1 for a key of ``_d``."""
        vals, first, name = self._vals, self._first, self._codec.key  # type: ignore[union-attr]
        assert vals is not None
        if self._order is None:
            for i, v in enumerate(vals):
                if v is not _ABSENT:
                    yield name(first + i), first + i
            return
        others = iter(self._d)
        for n in self._order:
            yield (name(n), n) if n >= 0 else (next(others), -1)

    def _to_dict(self) -> None:
        """Become the dict the numbered form stands for (same order, values and idleness)."""
        vals = self._vals
        if vals is None:
            return
        first, name, others = self._first, self._codec.key, self._d  # type: ignore[union-attr]
        self._d = {k: (vals[n - first] if n >= 0 else others[k]) for k, n in self._number_keys()}

        def keys(slots: set[Any]) -> set[Any]:
            return {name(s) if type(s) is int else s for s in slots}

        self._touched, self._hot = keys(self._touched), keys(self._hot)
        self._earlier = [keys(e) for e in self._earlier]
        self._vals = self._order = None
        self._count, self._last = 0, -1

    def _ordered(self) -> array[int]:
        """``_order``, made from the numbers present (ascending) the first time it is needed."""
        if self._order is None:
            first = self._first
            self._order = array("q", (first + i for i, v in enumerate(self._vals) if v is not _ABSENT))  # type: ignore[arg-type]
        return self._order

    def _place(self, n: int) -> int:
        """The index of number ``n`` in ``_vals``, growing it with holes to reach ``n``; -1 where
        that would take a gap out of proportion to the map (then it becomes a dict)."""
        vals = self._vals
        assert vals is not None
        if not self._count:
            if vals:
                vals.clear()
            self._first = n
        i = n - self._first
        bound = max(2 * len(vals), 1 << 16)
        if i < 0:
            if -i > bound:
                return -1
            vals[0:0] = [_ABSENT] * -i
            self._first = n
            return 0
        if i >= len(vals):
            if i >= bound:
                return -1
            vals.extend([_ABSENT] * (i - len(vals)))
            vals.append(_ABSENT)
        return i

    # -- reads: a spilled value is loaded, put back in its slot (order unchanged) and touched
    def _load(self, key: K) -> Any:
        value = self._loads(self._store.read(self._table, self._sql_key(key)))
        self._d[key] = value  # replacing a value keeps the key's place in the dict's order
        self._hot.add(key)
        self.stats.loaded += 1
        return value

    def _load_at(self, n: int) -> Any:
        value = self._loads(self._store.read(self._table, n))
        self._vals[n - self._first] = value  # type: ignore[index]
        self._hot.add(n)
        self.stats.loaded += 1
        return value

    def __getitem__(self, key: K) -> V:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]

    def get(self, key: K, default: Any = None) -> Any:
        vals = self._vals
        n = None if vals is None else self._codec.number(key)  # type: ignore[union-attr]
        if n is not None:
            i = n - self._first
            value = vals[i] if 0 <= i < len(vals) else _ABSENT  # type: ignore[arg-type, index]
            slot, load = n, self._load_at
        else:
            value = self._d.get(key, _ABSENT)
            slot, load = key, self._load
        if value is _ABSENT:
            return default
        if value is COLD:
            value = load(slot)
        self._touched.add(slot)
        return value

    def __contains__(self, key: object) -> bool:
        vals = self._vals
        if vals is not None:
            n = self._codec.number(key)  # type: ignore[union-attr]
            if n is not None:
                i = n - self._first
                return 0 <= i < len(vals) and vals[i] is not _ABSENT
        return key in self._d

    def __len__(self) -> int:
        return len(self._d) + self._count

    def __iter__(self) -> Iterator[K]:
        if self._vals is None:
            return iter(self._d)
        return self._keys()

    def _keys(self) -> Iterator[K]:
        vals, size = self._vals, len(self)
        for key, _ in self._number_keys():
            yield key
            if self._vals is not vals or len(self) != size:  # what a dict's iterator refuses too
                raise RuntimeError("cold map changed size during iteration")

    # -- writes
    def __setitem__(self, key: K, value: V) -> None:
        vals = self._vals
        if vals is not None:
            n = self._codec.number(key)  # type: ignore[union-attr]
            if n is not None:
                i = self._place(n)
                if i >= 0:
                    if vals[i] is _ABSENT:
                        self._count += 1
                        if n > self._last:
                            if self._order is not None:
                                self._order.append(n)
                            self._last = n
                        else:
                            self._ordered().append(n)
                    vals[i] = value
                    self._touched.add(n)
                    self._hot.add(n)
                    return
            elif type(key) is str:  # numbers are the slots of numbered keys: only str beside them
                if key not in self._d:
                    self._ordered().append(-1)
                self._d[key] = value
                self._touched.add(key)
                self._hot.add(key)
                return
            self._to_dict()  # a key far out of sequence, or of another type
        self._d[key] = value
        self._touched.add(key)
        self._hot.add(key)

    def __delitem__(self, key: K) -> None:
        if self._vals is not None:
            if key not in self:
                raise KeyError(key)
            self._to_dict()
        del self._d[key]  # a row left in the file is unreachable: the key is gone
        self._touched.discard(key)
        for earlier in self._earlier:
            earlier.discard(key)
        self._hot.discard(key)

    def clear(self) -> None:
        """Remove every key without reading anything back (the mixin's ``clear`` would load every
        spilled value first); rows left in the file are unreachable. A map with a codec starts
        numbered again."""
        self._d.clear()
        if self._codec is not None:
            self._vals, self._order = [], None
            self._first, self._count, self._last = 0, 0, -1
        self._touched.clear()
        for earlier in self._earlier:
            earlier.clear()
        self._hot.clear()

    def hot(self) -> int:
        """Values in memory now."""
        return len(self._hot)

    # -- paging out
    def spill(self) -> int:
        """Write every value not touched during the last ``idle_spills`` intervals (since the
        previous call, by default) to the store and drop it from memory; returns how many.
        Values something else still references stay."""
        touched, self._touched = self._touched, set()
        idle = self._hot - touched
        if self._earlier:
            for earlier in self._earlier:
                idle -= earlier
            self._earlier = [*self._earlier[1:], touched]
        d, vals, first = self._d, self._vals, self._first
        numbered = vals is not None
        can_spill, dumps = self._can_spill, self._dumps
        slots: list[Any] = []
        blobs: list[bytes] = []
        value = None
        # In the hot set's (hash) order: only the file's row order depends on it.
        for slot in idle:
            value = vals[slot - first] if numbered and type(slot) is int else d[slot]  # type: ignore[index]
            if not can_spill(value):
                self.stats.kept += 1
                continue
            slots.append(slot)
            blobs.append(dumps(value))
        del value
        if slots:
            # A number is its own row key; a key, what ``_sql_key`` makes of it.
            keys = [s if numbered and type(s) is int else self._sql_key(s) for s in slots]
            self._store.write(self._table, list(zip(keys, blobs, strict=True)))
            hot = self._hot
            for slot in slots:
                if numbered and type(slot) is int:
                    vals[slot - first] = COLD  # type: ignore[index]
                else:
                    d[slot] = COLD
                hot.discard(slot)
            self.stats.bytes += sum(map(len, blobs))
            self.stats.spilled += len(slots)
        return len(slots)


class Spills(Protocol):
    """What ``ColdStore.spill`` pages out besides its maps, by rules of its own (``attach``)."""

    stats: ColdStats

    def spill(self) -> int: ...


class ColdStore:
    """One SQLite file of spilled values for a run, one table per ``ColdMap``.

    The file is scratch, not a record: no journal, no fsync (a crash loses the run anyway), and
    it is deleted by ``close`` (or when the store is collected). ``directory`` defaults to a new
    temporary directory under ``TMPDIR``."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._own = directory is None
        self.dir = scratch.make("cold") if directory is None else Path(directory)
        self.path = self.dir / "cold.sqlite"
        self._db: sqlite3.Connection | None = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # EXCLUSIVE: the file is this process's alone; without it every read outside a
        # transaction takes and drops the file lock and re-reads the header (~10 us of a ~13 us read).
        pragmas = (
            "locking_mode=EXCLUSIVE",
            "journal_mode=OFF",
            "synchronous=OFF",
            "temp_store=MEMORY",
            f"cache_size=-{CACHE_KIB}",
        )
        for pragma in pragmas:
            self._db.execute("PRAGMA " + pragma)
        self._cur = self._db.cursor()  # one for every read: a cursor per read costs ~1 us
        self.maps: list[ColdMap[Any, Any]] = []
        self.parts: dict[str, Spills] = {}  # ``attach``
        self._read_sql: dict[str, str] = {}
        self._write_sql: dict[str, str] = {}
        # Objects values share on purpose (``share``), by identity: ``_ids[id(obj)]`` is obj's
        # place in ``_objs``, which keeps every one of them alive (so no id is reused).
        self._tables: list[list[Any]] = []  # [table, how many of its values are in _objs]
        self._objs: list[Any] = []
        self._ids: dict[int, int] = {}
        # Dict shapes (``dumps_refs``): key tuples, and each one's place.
        self._shapes: list[tuple[Any, ...]] = []
        self._shape_ids: dict[tuple[Any, ...], int] = {}

    # -- objects values share on purpose
    def share(self, table: Mapping[Any, Any]) -> None:
        """Register an intern table: its values are objects many values of the maps hold on
        purpose (one address dict for every order shipping there). ``dumps_refs`` stores a field
        of a dict value that is one of them (the very object) as a reference, and ``loads_refs``
        puts that object back: the values still share it after a page-out, one copy in memory,
        identity kept. The table may grow while the store is in use (new values are picked up at
        the next dump); whatever it once held stays resolvable for the store's life."""
        self._tables.append([table, 0])
        self._sync()

    def _sync(self) -> None:
        for entry in self._tables:
            table, seen = entry
            if len(table) != seen:
                for obj in itertools.islice(table.values(), seen, None):
                    if id(obj) not in self._ids:
                        self._ids[id(obj)] = len(self._objs)
                        self._objs.append(obj)
                entry[1] = len(table)

    def dumps_refs(self, value: Any) -> bytes:
        """Pickle ``value``. A dict value with ``str`` keys is stored as its shape (its keys, in
        order, kept once per store) and its values; its fields that are intern-table objects
        (``share``) as references. Everything else, nested objects included, goes by value.

        Why shapes: the values of a map are mostly dicts of a few shapes (an order state), and a
        dict pickled whole comes back with its own copy of every key string (~850 B of an
        order state's ~1.2 KB); from its shape it shares them, and the blob is half as long."""
        if type(value) is not dict:
            return pickle.dumps(value, _PROTOCOL)
        keys = tuple(value)
        sid = self._shape_ids.get(keys)
        if sid is None:
            sid = self._new_shape(keys)
            if sid is None:
                return pickle.dumps(value, _PROTOCOL)
        vals = list(value.values())
        refs = None
        if self._tables:
            self._sync()
            ids = self._ids
            for i, v in enumerate(vals):
                if type(v) not in _ATOMS:
                    pos = ids.get(id(v))
                    if pos is not None:
                        vals[i] = None
                        if refs is None:
                            refs = []
                        refs.append((i, pos))
        return _SHAPE + pickle.dumps((sid, vals, refs and tuple(refs)), _PROTOCOL)

    def _new_shape(self, keys: tuple[Any, ...]) -> int | None:
        # Only str keys (whose identity nobody relies on) and a bounded number of shapes: a map
        # of dicts keyed by data (ids) would otherwise grow a shape per value.
        if len(self._shapes) >= MAX_SHAPES or not all(type(k) is str for k in keys):
            return None
        sid = self._shape_ids[keys] = len(self._shapes)
        self._shapes.append(keys)
        return sid

    def loads_refs(self, blob: bytes) -> Any:
        """The inverse of ``dumps_refs``."""
        if blob[0] != _SHAPE_TAG:
            return pickle.loads(blob)
        sid, vals, refs = pickle.loads(memoryview(blob)[1:])
        keys = self._shapes[sid]
        if refs:
            objs = self._objs
            for i, pos in refs:
                vals[i] = objs[pos]
        return dict(zip(keys, vals, strict=True))

    def alone(self, value: Any) -> bool:
        """A ``can_spill`` for values made of dicts, lists, sets, tuples and atoms (str, numbers,
        None, bytes): nothing but the map holds the value, nor any mutable object inside it,
        intern-table objects (``share``) excepted. Paging such a value out and back in can change
        nothing anyone sees. Any other type inside refuses the value: its sharing is not checked."""
        if sys.getrefcount(value) > _ALONE:
            return False
        t = type(value)
        if t in _ATOMS:
            return True
        if t not in _WALKED:
            return False
        # A loop over a to-do list, not recursion: a Python call per inner list (an order's
        # lines) was most of the cost. Each child's count is taken while only its container and
        # the loop hold it, before it goes on the list.
        todo: list[tuple[Any, bool]] = []
        # Only a dict value's own fields go by reference (``dumps_refs``); deeper down an
        # intern-table object would be copied, so there it counts as shared like any other.
        if self._tables:
            self._sync()
        ids: Any = self._ids if t is dict else ()
        container: Any = value
        # ``outside``: ``container`` (a tuple) is referenced from elsewhere too, so anything
        # mutable inside it is shared however few references it has itself.
        outside = False
        while True:
            for child in container.values() if type(container) is dict else container:
                ct = type(child)
                if ct in _ATOMS:
                    continue
                if id(child) in ids:
                    continue
                n = sys.getrefcount(child)
                if ct in _MUTABLE:
                    if outside or n > _INNER_ALONE:
                        return False
                    if ct is not bytearray:
                        todo.append((child, False))
                elif ct is tuple or ct is frozenset:
                    todo.append((child, outside or n > _INNER_ALONE))
                else:
                    return False
            if not todo:
                return True
            container, outside = todo.pop()
            ids = ()

    def map(
        self,
        name: str,
        dumps: Callable[[Any], bytes] = _dumps,
        loads: Callable[[bytes], Any] = pickle.loads,
        can_spill: Callable[[Any], bool] = _refcount_alone,
        idle_spills: int = 1,
        codec: KeyCodec | None = None,
    ) -> ColdMap[Any, Any]:
        """A new ``ColdMap`` spilling to its own table ``name`` (letters, digits, ``_``). A value
        pages out once it went untouched through ``idle_spills`` intervals between ``spill``
        calls: more keeps values that are used again soon in memory (no write, no read back).
        ``codec``: the keys are mostly one form of numbered id, minted roughly in sequence (see
        the module's notes)."""
        db = self._claim(name)
        # No declared type on k: SQLite keeps ints as ints and strs as text, so both key kinds work.
        db.execute(f"CREATE TABLE {name} (k PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        self._read_sql[name] = f"SELECT v FROM {name} WHERE k = ?"
        self._write_sql[name] = f"INSERT OR REPLACE INTO {name} (k, v) VALUES (?, ?)"
        m: ColdMap[Any, Any] = ColdMap(self, name, dumps, loads, can_spill, idle_spills, codec)
        self.maps.append(m)
        return m

    def attach(self, name: str, part: Spills) -> sqlite3.Connection:
        """Page ``part`` out with the maps: ``spill`` calls ``part.spill()`` and ``stats`` reports
        ``part.stats`` under ``name``. The part keeps its own tables in this file, named ``name``
        or starting with ``name + "_"``, through the connection returned."""
        db = self._claim(name)
        self.parts[name] = part
        return db

    def _claim(self, name: str) -> sqlite3.Connection:
        if not name.replace("_", "").isalnum() or name in self._read_sql or name in self.parts:
            raise ValueError(f"cold map name {name!r}: must be unique and made of letters, digits and _")
        return self._conn()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the cold store is closed")
        return self._db

    def read(self, table: str, key: Any) -> bytes:
        if self._db is None:
            raise RuntimeError("the cold store is closed")
        row = self._cur.execute(self._read_sql[table], (key,)).fetchone()
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
        return sum(m.spill() for m in self.maps) + sum(p.spill() for p in self.parts.values())

    def stats(self) -> dict[str, dict[str, int]]:
        out = {m._table: m.stats.as_dict() for m in self.maps}
        return out | {name: p.stats.as_dict() for name, p in self.parts.items()}

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
