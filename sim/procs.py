"""Child processes of a live run: the four mocks and the integration, on loopback.

Every child leads its own process group (``start_new_session``), so stopping it also stops whatever
it spawned, and a Ctrl-C in the terminal reaches only the harness, which then stops the children
once, in order: SIGTERM to each group, a grace period, SIGKILL to whatever is left. Output goes to
``<log_dir>/<name>.log`` so a child that fails to start can be explained with its own words.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
TWIN = (sys.executable, "-c", "from sim.cli import main; main()")  # `twin` without relying on PATH


class ProcError(RuntimeError):
    """A child would not start, or died when it should not have."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers below 500; ProcError early if ``proc`` exits, or at the deadline."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ProcError(f"exited with code {proc.returncode} while starting")
        try:
            r = httpx.get(url, timeout=1.0)
            if r.status_code < 500:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as e:
            last = type(e).__name__
        time.sleep(0.1)
    raise ProcError(f"not answering at {url} after {timeout_s:g} s ({last})")


class Children:
    """Named child processes, each in its own process group; ``stop_all`` leaves none behind."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, tuple[list[str], dict[str, str]]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self, name: str, cmd: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        p = subprocess.Popen(
            list(cmd),
            env=env,
            cwd=str(REPO_ROOT),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs[name] = p
        self.specs[name] = (list(cmd), env)
        return p

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        cmd, env = self.specs[name]
        return self.start(name, cmd, env)

    def kill(self, name: str) -> None:
        """SIGKILL, no grace: the ``kill_integration`` fault (a crash, not a shutdown)."""
        p = self.procs.get(name)
        if p is not None and p.poll() is None:
            signal_group(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)

    def stop(self, name: str, grace_s: float = 5.0) -> None:
        """SIGTERM to one child's group, SIGKILL after ``grace_s``."""
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return
        signal_group(p.pid, signal.SIGTERM)
        try:
            p.wait(grace_s)
        except subprocess.TimeoutExpired:
            signal_group(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)

    def alive(self, name: str) -> bool:
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def stop_all(self, grace_s: float = 5.0) -> None:
        running = [p for p in self.procs.values() if p.poll() is None]
        for p in running:
            signal_group(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in running:
            try:
                p.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(p.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(5)
        for p in self.procs.values():  # the leader may be gone while a straggler of its group is not
            signal_group(p.pid, signal.SIGKILL)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def wait_healthy(self, name: str, url: str, timeout_s: float) -> None:
        """Poll ``url`` until it answers below 500; fail early (with the log) if the child exits."""
        try:
            wait_http(url, timeout_s, self.procs.get(name))
        except ProcError as e:
            raise ProcError(f"{name} {e}:\n{self.log_tail(name)}") from None


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM to the harness (CI cancelling a job) unwinds like Ctrl-C, so the children are stopped."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def processes_mentioning(text: str) -> list[str]:
    """``pid args`` of every process whose command line contains ``text`` (a run folder, say): how
    the tests check that a run left no child behind."""
    ps = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [ln for ln in ps.splitlines() if text in ln]
