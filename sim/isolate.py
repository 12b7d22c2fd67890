"""Run one function in a forked child process and take its result back: the simulation phase of a
large virtual run, so that its heap is given back to the OS before the analysis starts.

Why a process: once a run's world is dropped, CPython cannot return its memory. pymalloc frees an
arena only when every block in it is free, and the few objects that outlive the world (the
ledgers' values, caches, modules imported on the way) sit in nearly all of them. The analysis
then builds its frames with Arrow's and NumPy's allocators, which cannot reuse those pools, so
its peak stacked on top of the simulation's. A child's whole heap goes back when it exits; the
parent, which never held the world, loads only the result.

The result travels through a temporary file, not a pipe, so the child has exited (and its memory
is free) before the parent loads anything: the two peaks do not overlap. Messages the function
sends on the way (progress) come back through a pipe as they happen. Lists longer than
``_CHUNK`` (a ledger's values, a call log's ids: millions of items) are pickled a chunk at a time:
one pickle of the whole would memoise every item at once, a dictionary entry per object. A run
that spills (``sim.virtual.run_virtual(spill=...)``, the default for large runs) has its ledgers
and call records in segment files already: only their paths and small tables cross here.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

T = TypeVar("T")

_CHUNK = 1 << 18  # items of a long list per pickle: its memo stays a few tens of MB


def available() -> bool:
    """Whether ``call_in_child`` can run here (it needs ``os.fork``: not on Windows)."""
    return hasattr(os, "fork")


class ChildFailed(RuntimeError):
    """The child process died without a result (killed, out of memory, or a crash in C)."""


def call_in_child(
    fn: Callable[[Callable[[Any], None]], T],
    on_message: Callable[[Any], None] | None = None,
    *,
    tmp_dir: str | None = None,
) -> T:
    """``fn(send)`` in a forked child; returns what it returns, or raises what it raised.
    ``send(msg)`` in the child calls ``on_message(msg)`` in the parent (picklable messages)."""
    fd, path = tempfile.mkstemp(prefix="twin-sim-", suffix=".pickle", dir=tmp_dir)
    os.close(fd)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns, never runs the parent's cleanup or atexit hooks
        status = 1
        try:
            os.close(r)
            status = _child(fn, path, w)
        finally:
            os._exit(status)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as pipe:
            done = _relay(pipe, on_message)
        _, status = os.waitpid(pid, 0)
        pid = 0
        if not done:
            raise ChildFailed(f"the simulation process ended without a result ({_describe(status)})")
        with open(path, "rb") as f:
            ok, value = _load(f)
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]
    finally:
        if pid:  # interrupted (Ctrl-C) or failed while the child still runs: stop it
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.unlink(path)


def _child(fn: Callable[[Callable[[Any], None]], Any], path: str, w: int) -> int:
    with os.fdopen(w, "wb") as pipe:

        def send(msg: Any) -> None:
            pickle.dump(("msg", msg), pipe, protocol=pickle.HIGHEST_PROTOCOL)
            pipe.flush()

        try:
            outcome: tuple[bool, Any] = (True, fn(send))
        except BaseException as e:  # noqa: BLE001 -- every failure goes back to the parent to raise
            outcome = (False, e)
        with open(path, "wb") as f:
            try:
                _dump(outcome, f)
            except Exception as e:  # an unpicklable result or exception: say what it was
                f.seek(0)
                f.truncate()
                _dump((False, ChildFailed(f"the simulation's result could not be sent back: {e!r}")), f)
        pickle.dump(("done", None), pipe)
    return 0


def _relay(pipe: IO[bytes], on_message: Callable[[Any], None] | None) -> bool:
    """Pass the child's messages on until it says it is done (True) or the pipe closes (False)."""
    while True:
        try:
            tag, msg = pickle.load(pipe)
        except EOFError:
            return False
        if tag == "done":
            return True
        if on_message is not None:
            on_message(msg)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        hint = " -- out of memory?" if sig == signal.SIGKILL else ""
        return f"killed by signal {sig}{hint}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


# ------------------------------------------------------------------------------------ the file
# Layout: the long lists first, each as its length, its chunk count and one pickle per chunk; then
# one pickle of the value with every long list replaced by a persistent id (its position).


class _Outer(pickle.Pickler):
    def __init__(self, file: IO[bytes], lists: list[list[Any]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.lists = lists
        self.seen: dict[int, int] = {}  # id -> position: a list held twice is sent once

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is list and len(obj) > _CHUNK:
            at = self.seen.get(id(obj))
            if at is None:
                at = self.seen[id(obj)] = len(self.lists)
                self.lists.append(obj)
            return at
        return None


def _dump(value: Any, f: IO[bytes]) -> None:
    lists: list[list[Any]] = []
    outer = io.BytesIO()
    _Outer(outer, lists).dump(value)
    pickle.dump(len(lists), f)
    for items in lists:
        pickle.dump(len(items), f)
        for k in range(0, len(items), _CHUNK):
            pickle.dump(items[k : k + _CHUNK], f, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(outer.getbuffer())


def _chunks(f: IO[bytes], n: int) -> Iterator[list[Any]]:
    got = 0
    while got < n:
        part = pickle.load(f)
        got += len(part)
        yield part


def _load(f: IO[bytes]) -> Any:
    lists: list[list[Any]] = []
    # Each chunk was pickled with its own memo, so a string the child held once (an order's id
    # in every ledger and call record) arrives once per chunk: fold the copies back into one.
    canon: dict[str, str] = {}
    for _ in range(pickle.load(f)):
        items: list[Any] = []
        for part in _chunks(f, pickle.load(f)):
            items += [canon.setdefault(v, v) if type(v) is str else v for v in part]
        lists.append(items)
    del canon
    unpickler = pickle.Unpickler(f)
    unpickler.persistent_load = lists.__getitem__  # type: ignore[assignment]
    return unpickler.load()
