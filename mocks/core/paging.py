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

Better still is no string at all once a document is paged out: the cores' ids are a prefix and a
sequence number, so a ``ColdMap`` keyed by them and a ``RefIndex`` holding them keep numbers
(``NumberedIds``, ``SalesforceIds``: exact codecs, an id of any other form is kept as the string).
"""

from __future__ import annotations

import itertools
import marshal
import pickle
import sys
from array import array
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

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


class IdCodec(Protocol):
    """``mocks.coldmap.KeyCodec``: ``number(key)`` is ``n`` exactly when ``key == key(n)``."""

    def number(self, key: Any) -> int | None: ...

    def key(self, number: int) -> str: ...


class NumberedIds:
    """Ids that are a prefix and a zero-padded decimal number (``SO-0000001``, ``FO-000001``)."""

    __slots__ = ("prefix", "_at", "_width", "_format")

    def __init__(self, prefix: str, width: int) -> None:
        self.prefix = prefix
        self._at = len(prefix)
        self._width = width
        self._format = prefix.replace("{", "{{").replace("}", "}}") + "{:0" + str(width) + "d}"

    def key(self, number: int) -> str:
        return self._format.format(number)

    def number(self, key: Any) -> int | None:
        if type(key) is not str or not key.startswith(self.prefix):
            return None
        digits = key[self._at :]
        if not (digits.isascii() and digits.isdigit()):
            return None
        # What the padding makes of a number: exactly ``width`` digits, or more without a leading 0.
        k = len(digits) - self._width
        return int(digits) if k == 0 or (k > 0 and digits[0] != "0") else None


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B62_VALUE = {ch: i for i, ch in enumerate(_B62)}
# Two base-62 digits at a time: 3,844 entries, and half the Python-level steps of one at a time.
_B62_PAIR = {a + b: i * 62 + j for i, a in enumerate(_B62) for j, b in enumerate(_B62)}
_SF_CHECK = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_UPPER_BIT = str.maketrans({ch: "1" if ch.isupper() else "0" for ch in _B62})
# A 5-char chunk's case pattern (``_UPPER_BIT``: "1" where upper case) -> its checksum character.
_CHUNK_CHECK = {
    "".join(bit): _SF_CHECK[sum(1 << j for j, b in enumerate(bit) if b == "1")]
    for bit in itertools.product("01", repeat=5)
}


class SalesforceIds:
    """``sim.masterdata.salesforce_id(prefix, n, instance)``: 3-char prefix, 2-char instance, ``0``,
    9 base-62 digits, 3 checksum characters. ``number`` checks all of it without building the id
    (``salesforce_id`` costs ~10 us; the CRM core and the ERP / WMS reference indexes ask often)."""

    __slots__ = ("prefix", "instance", "_head", "_check0")

    def __init__(self, prefix: str, instance: str) -> None:
        from sim.masterdata import salesforce_id

        first = salesforce_id(prefix, 0, instance)  # the same checks of prefix and instance
        self.prefix, self.instance = prefix, instance
        self._head = prefix + instance + "0"
        self._check0 = first[15]  # the first chunk is the prefix and instance: its check is fixed

    def key(self, number: int) -> str:
        from sim.masterdata import salesforce_id

        return salesforce_id(self.prefix, number, self.instance)

    def number(self, key: Any) -> int | None:
        if type(key) is not str or len(key) != 18 or not key.startswith(self._head):
            return None
        pair = _B62_PAIR.get
        a, b, c, d, e = pair(key[6:8]), pair(key[8:10]), pair(key[10:12]), pair(key[12:14]), _B62_VALUE.get(key[14])
        if a is None or b is None or c is None or d is None or e is None:
            return None
        n = (((a * 3844 + b) * 3844 + c) * 3844 + d) * 62 + e
        # The checksum: a character per 5-char chunk, from which of its chars are upper case.
        bits = key[5:15].translate(_UPPER_BIT)  # all base 62 (decoded above), the head's "0" too
        if key[15] != self._check0 or key[16] != _CHUNK_CHECK[bits[:5]] or key[17] != _CHUNK_CHECK[bits[5:]]:
            return None
        return n


class PrefixedIds:
    """Another codec's ids behind a fixed prefix (the integration's ``order:<crm id>`` state keys)."""

    __slots__ = ("prefix", "inner", "_at")

    def __init__(self, prefix: str, inner: IdCodec) -> None:
        self.prefix, self.inner, self._at = prefix, inner, len(prefix)

    def key(self, number: int) -> str:
        return self.prefix + self.inner.key(number)

    def number(self, key: Any) -> int | None:
        if type(key) is not str or not key.startswith(self.prefix):
            return None
        return self.inner.number(key[self._at :])


def crm_order_ids(md: Any) -> SalesforceIds:
    """The codec of the CRM's order ids (``CrmCore``): key prefix ``801`` and the org's instance,
    which its account ids carry."""
    first = md.customers[0].crm_account_id if md.customers else "0015g0"
    return SalesforceIds("801", first[3:5])


class RefIndex:
    """Document ids by the caller's reference (ERP ExtRef, WMS client reference): the id itself
    where a reference names one document, as almost every one does, and a tuple of ids where it
    names more (a duplicate), so the common case costs a dict slot and no container.

    Given codecs for the references and the ids (``refs``, ``ids``), a reference of the codec's
    form naming one id of its form costs no string and no slot: the id's number sits in an array
    at the reference's number (the references are minted in sequence too, so the array is dense).
    ``get`` then hands out an equal id, not the one given to ``add``."""

    __slots__ = ("_d", "_refs", "_ids", "_by_number", "_numbered")

    def __init__(self, refs: IdCodec | None = None, ids: IdCodec | None = None) -> None:
        self._d: dict[str, str | tuple[str, ...]] = {}
        self._refs = refs if ids is not None else None
        self._ids = ids if refs is not None else None
        # At the reference's number: the id's number + 1; 0 where there is none.
        self._by_number = array("q")
        self._numbered = 0  # nonzero slots

    def _slot(self, ref: Any) -> int:
        """The reference's number if it has a place in the array (in range), else -1."""
        n = self._refs.number(ref) if self._refs is not None else None
        return -1 if n is None or n >= len(self._by_number) else n

    def add(self, ref: str, doc_id: str) -> None:
        had = self._d.get(ref)
        if had is None and self._refs is not None:
            n, m = self._refs.number(ref), self._ids.number(doc_id)  # type: ignore[union-attr]
            if n is not None:
                numbers = self._by_number
                if n < len(numbers) and numbers[n]:  # a second id: both go to the dict
                    had = self._ids.key(numbers[n] - 1)  # type: ignore[union-attr]
                    numbers[n] = 0
                    self._numbered -= 1
                elif m is not None and n < max(2 * len(numbers), 1 << 16):  # bounded: no huge gaps
                    if n >= len(numbers):
                        numbers.extend(bytes(8 * (max(n + 1, 2 * len(numbers)) - len(numbers))))
                    numbers[n] = m + 1
                    self._numbered += 1
                    return
        if had is None:
            self._d[ref] = doc_id
        else:
            self._d[ref] = (had, doc_id) if isinstance(had, str) else (*had, doc_id)

    def get(self, ref: str) -> tuple[str, ...]:
        """The ids ``ref`` names, oldest first; ``()`` when none."""
        had = self._d.get(ref)
        if had is None:
            n = self._slot(ref)
            if n >= 0 and self._by_number[n]:
                return (self._ids.key(self._by_number[n] - 1),)  # type: ignore[union-attr]
            return ()
        return (had,) if isinstance(had, str) else had

    def __contains__(self, ref: object) -> bool:
        if ref in self._d:
            return True
        n = self._slot(ref)
        return n >= 0 and self._by_number[n] != 0

    def __len__(self) -> int:
        return len(self._d) + self._numbered
