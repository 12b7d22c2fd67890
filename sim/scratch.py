"""Scratch directories under ``TMPDIR``, named for the process that owns them.

A large run keeps its spilled ledgers, call records and paged-out documents in a scratch directory
(hundreds of MB to GBs at a 1M-order quarter), and the owner removes it when the run ends. A run
that is killed outright (SIGKILL, the OOM killer, a CI job timeout) runs no ``finally`` and no
``atexit``, so its directory stays. With the owner's pid in the name, the next run can tell such
leftovers from the directories of runs still going, and clears them (``sweep_stale``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "twin-"
KINDS = ("spill", "run", "live", "cold")
_NAME = re.compile(rf"^{PREFIX}({'|'.join(KINDS)})-(\d+)-")


def make(kind: str) -> Path:
    """A new directory ``twin-<kind>-<pid>-<random>`` under ``TMPDIR``."""
    if kind not in KINDS:
        raise ValueError(f"scratch kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{os.getpid()}-"))


def owner(path: str | Path) -> int | None:
    """The pid a scratch directory is named for (None: not a name ``make`` gives)."""
    m = _NAME.match(Path(path).name)
    return int(m.group(2)) if m else None


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user counts: it may be a run)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(root: str | Path | None = None) -> list[Path]:
    """Remove the scratch directories under ``root`` (``TMPDIR``) of this user's processes that no
    longer exist; returns what was removed. A pid may have been reused by an unrelated process
    since: its leftovers then wait for a later sweep, which is the safe way round."""
    base = Path(root if root is not None else tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        pid = owner(entry.name)
        if pid is None or pid == os.getpid():
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or (
                uid is not None and entry.stat(follow_symlinks=False).st_uid != uid
            ):
                continue
        except OSError:
            continue
        if not alive(pid):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed
