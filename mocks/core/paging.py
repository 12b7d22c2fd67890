"""What the mock cores need to page their documents out (``mocks.coldmap``) and keep them small.

A core's documents are slots dataclasses of plain values. Pickle spends most of its time and
bytes on naming the class and each field; a document is written out as the tuple of its field
values with ``marshal`` instead (about a quarter of the time, half the bytes, and exact for the
built-in types it accepts: a float comes back bit for bit, a tuple as a tuple). A value marshal
refuses (a subclass of a built-in type, say ``numpy.float64``) makes the whole tuple go through
pickle, which keeps its type: slower, never wrong.

Objects documents share with the rest of the world (master-data models, a core's one copy of
each address) must come back as the same object, not a copy: ``Numbered`` gives each a number
that the written tuple holds in its place.
"""

from __future__ import annotations

import marshal
import pickle
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_PICKLE_PROTO = pickle.HIGHEST_PROTOCOL
# Pickle (protocol 2+) starts with the PROTO opcode 0x80; marshal starts with a type code, which
# is never 0x80 (an unflagged code is ASCII; 0x80 is only ever OR'ed onto one as FLAG_REF).
_PICKLE_FIRST = 0x80


def pack(fields: tuple[Any, ...]) -> bytes:
    """A document's field values as bytes: marshal, or pickle where marshal cannot be exact."""
    try:
        return marshal.dumps(fields)
    except ValueError:  # "unmarshallable object": a type marshal does not know, or a subclass
        return pickle.dumps(fields, _PICKLE_PROTO)


def unpack(blob: bytes) -> Any:
    return pickle.loads(blob) if blob[0] == _PICKLE_FIRST else marshal.loads(blob)


class Numbered(Generic[T]):
    """Objects many documents share, numbered: a document written out holds an object's number,
    and reading it back gives the very object (``None`` is numbered like anything else).

    Numbers are by identity, and the table keeps each object alive so that an identity is never
    reused by another object; only shared objects belong here (a handful per customer)."""

    __slots__ = ("objects", "_number")

    def __init__(self) -> None:
        self.objects: list[T] = []
        self._number: dict[int, int] = {}

    def number(self, obj: T) -> int:
        n = self._number.get(id(obj))
        if n is None:
            n = self._number[id(obj)] = len(self.objects)
            self.objects.append(obj)
        return n

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
