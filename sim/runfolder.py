"""The run folder every run writes, virtual or live (DESIGN.md "Run results"), and reading it back.

```
scenario.yaml   resolved scenario (sim.scenario.dump_scenario)
meta.json       seed, profile, mode, versions, wall start/end, git sha
kpis.json       sim.kpis.compute_kpis
orders.parquet  one row per order (sim.reconcile.reconcile)
events.parquet  every ledger entry; ``data`` as a JSON string
calls.parquet   every integration call attempt; nested values as JSON strings
report.html     self-contained report; chart_*.png alongside
```
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from sim.reconcile import entries_frame
from sim.scenario import Scenario, dump_scenario, parse_scenario
from sim.tables import TableFile

FILES = ("scenario.yaml", "meta.json", "kpis.json", "orders.parquet", "events.parquet", "calls.parquet")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("distribution-twin", "simpy", "pandas", "numpy", "pydantic"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_sha(cwd: str | Path | None = None) -> str | None:
    """The checkout's commit, if this runs inside one (best effort, never raises)."""
    try:
        r = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = r.stdout.strip()
    return sha if r.returncode == 0 and sha else None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def make_meta(
    scenario: Scenario,
    *,
    mode: str,
    seed: int | None = None,
    profile: str | None = None,
    wall_start: str | None = None,
    wall_end: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "scenario": scenario.name,
        "seed": scenario.seed if seed is None else seed,
        "profile": profile or scenario.integration.profile,
        "mode": mode,
        "wall_start": wall_start,
        "wall_end": wall_end or now_iso(),
        "git_sha": git_sha(),
        "versions": versions(),
        **extra,
    }


def _json_cell(v: Any) -> Any:
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, sort_keys=True, default=str)
    return v


def events_frame(entries: Iterable[Any] | pd.DataFrame) -> pd.DataFrame:
    """Ledger entries (``Entry``, dicts, or a ``sim.reconcile.entries_frame``) -> the events.parquet
    table, sorted by (t, system, seq), ``data`` as JSON text."""
    df = entries.copy() if isinstance(entries, pd.DataFrame) else entries_frame(entries)
    enc = json.JSONEncoder(sort_keys=True, default=str).encode  # one encoder, not one per entry
    df["data"] = [enc(d or {}) if not isinstance(d, str) else d for d in df["data"]]
    return df


def ledgers_events_frame(ledgers: Sequence[Any]) -> pd.DataFrame | None:
    """``events_frame(entries_frame(every entry of every ledger))``, read from the ledgers'
    columns (``mocks.ledger.Ledger.pick``): no ``Entry`` or ``data`` dict for the whole run at
    once. Each column holds the values the entry path would have put there, in the order of the
    same (t, system, seq) sort, with the dtype pandas infers from them; the JSON text is encoded
    a chunk at a time straight into the column's Arrow buffer. None when a ledger cannot be read
    this way (no columns, a time that is not a float) or there is no entry at all: use the entry
    path then."""
    times = [getattr(led, "times", lambda: None)() for led in ledgers]
    if not ledgers or any(t is None for t in times):
        return None
    lens = [len(led) for led in ledgers]
    total = sum(lens)
    if not total:
        return None
    t = np.concatenate([np.frombuffer(x, dtype=np.float64) for x in times])  # type: ignore[arg-type]
    seq = np.concatenate(
        [np.arange(led.first_seq, led.first_seq + n, dtype=np.int64) for led, n in zip(ledgers, lens, strict=True)]
    )
    names = sorted({led.system for led in ledgers})
    rank = np.repeat(np.array([names.index(led.system) for led in ledgers], dtype=np.int64), lens)
    order = np.lexsort((seq, rank, t))  # stable, like the entry path's sort_values(kind="stable")
    del rank
    cols: dict[str, Any] = {"seq": pd.Series(seq[order]), "t": pd.Series(t[order])}
    del seq, t
    # Where each row of the sorted frame comes from: which ledger, which of its entries.
    led_of = np.repeat(np.arange(len(ledgers), dtype=np.int64), lens)[order]
    row_of = (np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens))[order]
    del order

    def chunks(fetch: Callable[[int, list[int]], list[Any]]) -> Iterator[list[Any]]:
        """A column in frame order, ``_CHUNK`` rows at a time; ``fetch(ledger, rows)`` reads one
        ledger's entries."""
        for k in range(0, total, _CHUNK):
            which, rows = led_of[k : k + _CHUNK], row_of[k : k + _CHUNK]
            if len(ledgers) == 1:
                yield fetch(0, rows.tolist())
                continue
            part: list[Any] = [None] * len(which)
            for j in range(len(ledgers)):
                at = np.flatnonzero(which == j)
                if len(at):
                    for p, v in zip(at.tolist(), fetch(j, rows[at].tolist()), strict=True):
                        part[p] = v
            yield part

    def column(fetch: Callable[[int, list[int]], list[Any]]) -> pd.Series:
        values: list[Any] = []
        for part in chunks(fetch):
            values += part
        return pd.Series(values)

    # Ids and names: lists of the ledgers' own str objects (8 B a row), as pandas takes them.
    cols["system"] = column(lambda j, rows: [ledgers[j].system] * len(rows))
    for name in ("kind", "entity", "ref", "correlation_id", "idempotency_key"):
        cols[name] = column(lambda j, rows, name=name: ledgers[j].pick(name, rows))  # type: ignore[misc]
    # The JSON text is new and the bulk of the frame: never the whole column as Python strings.
    enc = json.JSONEncoder(sort_keys=True, default=str).encode  # as events_frame encodes (ASCII)

    def data(j: int, rows: list[int]) -> list[Any]:
        return ledgers[j].pick("data", rows, enc)

    text = pd.Series(["{}"]).dtype  # what pandas makes of a list of str
    if isinstance(text, pd.StringDtype) and text.storage == "pyarrow":
        # Encoded a chunk at a time into one buffer laid out as Arrow's large_string (ASCII: a
        # character is a byte), which becomes the column without a copy: the single-chunk array
        # pandas would have built from the list.
        blob, offsets = bytearray(), array("q", [0])
        for part in chunks(data):
            blob += "".join(part).encode("ascii")
            ends = accumulate(map(len, part), initial=offsets[-1])
            next(ends)  # the initial value: the previous chunk's end, already there
            offsets.extend(ends)
        arr = pa.LargeStringArray.from_buffers(total, pa.py_buffer(offsets), pa.py_buffer(blob))
        cols["data"] = pd.Series(text.__from_arrow__(pa.chunked_array([arr])))
    else:
        cols["data"] = column(data)
    return pd.DataFrame(cols)


_CHUNK = 1 << 16  # rows of a text column converted to Arrow at a time
_ROW_GROUP = 1 << 17  # rows per parquet row group of events.parquet and calls.parquet


def calls_frame(calls: Iterable[Any]) -> pd.DataFrame:
    """Integration call records (dicts or dataclasses, or a ``metrics.CallTable``) -> calls.parquet
    table, flat and typed."""
    column = getattr(calls, "column", None)
    if column is not None and len(calls):  # type: ignore[arg-type]
        # A CallTable: one column at a time, each the list of the values recorded (so pandas infers
        # exactly what it would from the records), converted and dropped before the next; the
        # times straight from their float arrays when every one is a float.
        cols: dict[str, pd.Series] = {}
        t0, t1 = calls.floats("t_start"), calls.floats("t_end")  # type: ignore[attr-defined]
        for k in calls.columns:  # type: ignore[attr-defined]
            if t0 is not None and t1 is not None and k in ("t_start", "t_end", "latency_s"):
                a0, a1 = np.frombuffer(t0, dtype=np.float64), np.frombuffer(t1, dtype=np.float64)
                # latency_s = t_end - t_start: the same IEEE subtraction the records made
                cols[k] = pd.Series(a0.copy() if k == "t_start" else a1.copy() if k == "t_end" else a1 - a0)
            else:
                cols[k] = pd.Series(column(k))
        return _json_cells(pd.DataFrame(cols))
    calls = list(calls)
    kind = type(calls[0]) if calls else None
    names = tuple(getattr(kind, "__dataclass_fields__", ()))
    if names and all(type(c) is kind for c in calls):
        # One list per column, not a dict per row: a quarter has millions of call records, and
        # per-row dicts cost both time and a second copy of the log at the run's memory peak.
        df = pd.DataFrame({k: [getattr(c, k) for c in calls] for k in names})
        return _json_cells(df)
    rows = []
    for c in calls:
        if isinstance(c, Mapping):
            rows.append(dict(c))
        elif hasattr(c, "__dataclass_fields__"):
            rows.append({k: getattr(c, k) for k in c.__dataclass_fields__})
        else:
            rows.append(dict(vars(c)))
    return _json_cells(pd.DataFrame(rows))


def _json_cells(df: pd.DataFrame) -> pd.DataFrame:
    for col in df.columns:
        if df[col].dtype == object and any(isinstance(v, dict | list | tuple) for v in df[col]):
            df[col] = [_json_cell(v) for v in df[col]]
    return df


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` itself, or a shallow copy with the object columns pyarrow would reject turned to text
    (a deep copy of a quarter's events frame was the run folder's whole memory peak)."""
    out = df
    for col in df.columns:
        if df[col].dtype == object:
            vals = [v for v in df[col] if v is not None and not (isinstance(v, float) and pd.isna(v))]
            kinds = {type(v) for v in vals}
            if kinds - {str, bool, int, float}:
                fixed = [_json_cell(v) for v in df[col]]
            elif len(kinds) > 1 and kinds != {int, float}:
                # mixed scalars: pyarrow would reject them; text keeps every value readable
                fixed = [None if v is None else str(v) for v in df[col]]
            else:
                continue
            if out is df:
                out = df.copy(deep=False)  # a whole column is replaced: the caller's frame is untouched
            out[col] = fixed
    return out


def _write_table(table: pd.DataFrame | TableFile, path: Path) -> None:
    if isinstance(table, TableFile):
        if path.exists() and path.samefile(table.path):
            return
        path.unlink(missing_ok=True)
        try:
            os.link(table.path, path)  # the same bytes, no copy (parquet files are never edited in place)
        except OSError:  # another file system, or no hard links there
            shutil.copyfile(table.path, path)
        return
    # Row groups of _ROW_GROUP rows: the writer encodes and buffers one group at a time (its
    # default, a million rows, is a quarter's events several times over in one buffer).
    _parquet_safe(table).to_parquet(path, index=False, row_group_size=_ROW_GROUP)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def write_run(
    out: str | Path,
    *,
    scenario: Scenario,
    orders: pd.DataFrame,
    events: pd.DataFrame | TableFile,
    calls: pd.DataFrame | TableFile | None,
    kpis: Mapping[str, Any],
    meta: Mapping[str, Any],
    breaches: Sequence[str] = (),
    report: bool = True,
) -> Path:
    """Write the whole run folder; returns its path. ``events`` / ``calls`` given as files (a
    virtual run streamed them) are hard-linked (copied where that cannot be done)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scenario.yaml").write_text(dump_scenario(scenario), encoding="utf-8")
    _write_json(out / "meta.json", dict(meta))
    _write_json(out / "kpis.json", dict(kpis))
    _parquet_safe(orders).to_parquet(out / "orders.parquet", index=False)
    _write_table(events, out / "events.parquet")
    _write_table(calls if calls is not None else pd.DataFrame({"system": pd.Series(dtype=str)}), out / "calls.parquet")
    if report:
        from sim.report import write_report

        write_report(
            out,
            orders,
            kpis,
            faults=scenario.faults,
            title=f"{scenario.name} ({meta.get('mode', '?')}, {meta.get('profile', '?')}, seed {meta.get('seed')})",
            meta=meta,
            breaches=breaches,
        )
    return out


@dataclass(slots=True)
class Run:
    path: Path
    scenario: Scenario
    meta: dict[str, Any]
    kpis: dict[str, Any]
    orders: pd.DataFrame
    events: pd.DataFrame
    calls: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)

    def events_with_data(self) -> pd.DataFrame:
        """events with ``data`` parsed back into dicts (what sim.reconcile accepts either way)."""
        df = self.events.copy()
        df["data"] = [json.loads(d) if isinstance(d, str) and d else {} for d in df["data"]]
        return df


def load_run(path: str | Path) -> Run:
    """Read a run folder back (scenario validated, tables as DataFrames)."""
    p = Path(path)
    missing = [f for f in FILES if not (p / f).exists()]
    if missing:
        raise FileNotFoundError(f"{p}: not a run folder, missing {', '.join(missing)}")
    raw = yaml.safe_load((p / "scenario.yaml").read_text(encoding="utf-8")) or {}
    return Run(
        path=p,
        scenario=parse_scenario(raw, str(p / "scenario.yaml")),
        meta=json.loads((p / "meta.json").read_text(encoding="utf-8")),
        kpis=json.loads((p / "kpis.json").read_text(encoding="utf-8")),
        orders=pd.read_parquet(p / "orders.parquet"),
        events=pd.read_parquet(p / "events.parquet"),
        calls=pd.read_parquet(p / "calls.parquet"),
    )
