"""What the mock cores need to page their documents out (``mocks.coldmap``) and keep them small.

A core's documents are slots dataclasses of plain values. Pickle spends most of its time and
bytes on naming the class and each field; a document is written out as the tuple of its field
values with ``marshal`` instead (about a quarter of the time, half the bytes, and exact for the
built-in types: a float comes back bit for bit, a tuple as a tuple). Marshal is not exact beyond
them -- it writes anything with a buffer (a ``numpy.float64``!) as ``bytes`` without a word -- so
``pack`` looks at the type of every value first and pickles what is not plainly built-in (slower,
never wrong). To keep that look cheap a document is given as flat parts: its scalar fields, then
each container field flattened (lines, items, history, scans).

Objects documents share with the rest of the world (master-data models, a core's one copy of
each address) must come back as the same object, not a copy: a document is written with a key or
a number in their place (``Shared`` keeps a core's copies numbered).

Strings need the same care for memory's sake (never for behaviour: nothing compares strings by
identity). A document's id and references go on into every ledger entry, webhook and integration
record made after the document is read back; a fresh copy per read would cost the bytes paging
saves. ``intern`` them as they are written: marshal marks an interned string as such and reading
it back interns it again, which returns the one object still alive -- the original, in the ledger
and the map's key -- at the price of a slot in the interpreter's table while anything holds it.
"""

from __future__ import annotations

import marshal
import pickle
import sys
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_PICKLE_PROTO = pickle.HIGHEST_PROTOCOL
# Pickle (protocol 2+) starts with the PROTO opcode 0x80; marshal starts with a type code, which
# is never 0x80 (an unflagged code is ASCII; 0x80 is only ever OR'ed onto one as FLAG_REF).
_PICKLE_FIRST = 0x80


_SCALARS = frozenset({str, int, float, bool, type(None)})


def pack(*parts: Sequence[Any]) -> bytes:
    """A document as bytes, given as flat sequences of scalars (its fields with the containers
    among them written out as parts of their own, flattened): marshal where every value is
    exactly a built-in scalar type -- one pass in C per part -- else pickle."""
    for part in parts:
        if not _SCALARS.issuperset(map(type, part)):
            return pickle.dumps(parts, _PICKLE_PROTO)
    return marshal.dumps(parts)


def unpack(blob: bytes) -> Any:
    """The parts ``pack`` was given, as a tuple (each part a list or tuple, as given)."""
    return pickle.loads(blob) if blob[0] == _PICKLE_FIRST else marshal.loads(blob)


def intern(values: list[Any], at: tuple[int, ...]) -> None:
    """Intern the plain strings among ``values[i] for i in at`` in place (see the module's notes)."""
    for i in at:
        v = values[i]
        if type(v) is str:  # sys.intern refuses subclasses, and None is common
            values[i] = sys.intern(v)


class Shared(Generic[T]):
    """One copy of each distinct value many documents hold (an address, a name), numbered: a
    document written out holds its copy's number, and reading it back gives that very copy.

    One dict from value to number and a list of the copies: what a plain ``dict.setdefault``
    table of copies costs, plus a list slot, with the numbers for free."""

    __slots__ = ("objects", "_numbers")

    def __init__(self) -> None:
        self.objects: list[T] = []
        self._numbers: dict[T, int] = {}

    def share(self, value: T) -> T:
        """The one copy equal to ``value`` (``value`` itself the first time)."""
        n = self._numbers.get(value)
        if n is None:
            self._numbers[value] = len(self.objects)
            self.objects.append(value)
            return value
        return self.objects[n]

    def number(self, value: T) -> int:
        """The number of a shared copy (by value: equal values share one copy)."""
        return self._numbers[value]

    def __len__(self) -> int:
        return len(self.objects)


class RefIndex:
    """Document ids by the caller's reference (ERP ExtRef, WMS client reference): the id itself
    where a reference names one document, as almost every one does, and a tuple of ids where it
    names more (a duplicate), so the common case costs a dict slot and no container."""

    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d: dict[str, str | tuple[str, ...]] = {}

    def add(self, ref: str, doc_id: str) -> None:
        had = self._d.get(ref)
        if had is None:
            self._d[ref] = doc_id
        else:
            self._d[ref] = (had, doc_id) if isinstance(had, str) else (*had, doc_id)

    def get(self, ref: str) -> tuple[str, ...]:
        """The ids ``ref`` names, oldest first; ``()`` when none."""
        had = self._d.get(ref)
        if had is None:
            return ()
        return (had,) if isinstance(had, str) else had

    def __contains__(self, ref: object) -> bool:
        return ref in self._d

    def __len__(self) -> int:
        return len(self._d)
