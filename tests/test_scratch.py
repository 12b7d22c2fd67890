"""sim.scratch: a run killed outright leaves its scratch directory, and the next run clears it;
directories of runs still going, of other names, and of this process are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sim import scratch

ROOT = Path(__file__).resolve().parent.parent


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_names_carry_the_owner_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    d = scratch.make("spill")
    assert d.parent == tmp_path and d.is_dir()
    assert d.name.startswith(f"twin-spill-{os.getpid()}-")
    assert scratch.owner(d) == os.getpid()
    assert scratch.owner(tmp_path / "twin-spill-abc") is None
    assert scratch.owner(tmp_path / "other-1-x") is None
    with pytest.raises(ValueError, match="'tmp'"):
        scratch.make("tmp")


def test_sweep_removes_only_what_dead_processes_left(tmp_path: Path) -> None:
    dead, live = _dead_pid(), os.getppid()
    assert not scratch.alive(dead) and scratch.alive(live)
    stale = [tmp_path / f"twin-{kind}-{dead}-x1" for kind in scratch.KINDS]
    kept = [
        tmp_path / f"twin-spill-{live}-x2",  # a run still going
        tmp_path / f"twin-spill-{os.getpid()}-x3",  # this process's own
        tmp_path / f"twin-other-{dead}-x4",  # not a kind of ours
        tmp_path / f"notwin-spill-{dead}-x5",
    ]
    for d in [*stale, *kept]:
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "segment.bin").write_bytes(b"x" * 100)
    a_file = tmp_path / f"twin-spill-{dead}-file"
    a_file.write_text("not a directory")
    removed = scratch.sweep_stale(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert all(not d.exists() for d in stale)
    assert all(d.is_dir() for d in kept) and a_file.exists()
    assert scratch.sweep_stale(tmp_path) == []
    assert scratch.sweep_stale(tmp_path / "missing") == []


_KILLED_RUN = """
import sys, time
sys.path.insert(0, {root!r})
import tempfile
tempfile.tempdir = {tmp!r}
import sim.virtual as virtual
from sim.scenario import load_scenario

def hang(world, *args):
    print("running", flush=True)
    time.sleep(60)

virtual._run = hang
sc = load_scenario({scenario!r}, ["demand.orders=50"])
virtual.run_virtual(sc, seed=3, report=False, isolate=False, spill=True, cold=True)
"""


def test_a_killed_run_leaves_its_scratch_and_the_next_run_clears_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL runs no ``finally``: the run's spill directory (with the cold store's file in it)
    stays, and the next ``run_virtual`` removes it before it starts."""
    import sim.virtual as virtual
    from sim.scenario import load_scenario

    scenario = str(ROOT / "scenarios" / "quarter_end_surge.yaml")
    code = _KILLED_RUN.format(root=str(ROOT), tmp=str(tmp_path), scenario=scenario)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "running"
        left = list(tmp_path.glob(f"twin-spill-{p.pid}-*"))
        assert len(left) == 1 and (left[0] / "cold.sqlite").exists()
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    assert left[0].exists()  # nobody cleaned up after the killed run

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    sc = load_scenario(scenario, ["demand.orders=20"])
    deadline = time.monotonic() + 10
    while scratch.alive(p.pid) and time.monotonic() < deadline:  # reaped: gone at once
        time.sleep(0.05)
    virtual.run_virtual(sc, seed=3, report=False, isolate=False, spill=True)
    assert not left[0].exists()
    assert list(tmp_path.iterdir()) == []  # and this run removed its own
