"""Charts (PNG) and a self-contained ``report.html`` for a run, plus a two-run overlay.

Uses ``matplotlib.figure.Figure`` directly (Agg canvas, no pyplot): no global backend state,
safe in worker processes and headless CI.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.kpis import backlog_at
from sim.modeltime import milestone_latency
from sim.reconcile import OUTCOMES
from sim.scenario import FaultWindow

CHARTS = ("orders", "latency", "backlog", "fallout")
_COLORS = {"completed": "#2e7d32", "credit_hold": "#9e9d24", "backordered": "#f9a825"}


def _unit(span_s: float) -> tuple[float, str]:
    """Time axis unit: hours for runs up to a month, days beyond (keeps charts readable)."""
    return (3600.0, "hour") if span_s <= 31 * 86400 else (86400.0, "day")


def _span(orders: pd.DataFrame, sim_s: float) -> float:
    last = float(orders["t_submitted"].max()) if len(orders) else 0.0
    return max(sim_s, last, 1.0)


def _shade(ax: Any, faults: Iterable[FaultWindow], unit: float) -> None:
    for i, f in enumerate(faults):
        ax.axvspan(f.start / unit, f.end / unit, color="#d32f2f", alpha=0.12, label="fault window" if i == 0 else None)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def chart_orders(orders: pd.DataFrame, faults: Sequence[FaultWindow], sim_s: float) -> bytes:
    unit, name = _unit(_span(orders, sim_s))
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax = fig.add_subplot()
    if len(orders):
        bins = np.arange(0, _span(orders, sim_s) / unit + 1)
        counts, edges = np.histogram(orders["t_submitted"] / unit, bins=bins)
        ax.step(edges[:-1], counts, where="post", lw=1, label="submitted")
    _shade(ax, faults, unit)
    ax.set(xlabel=f"simulated {name}", ylabel=f"orders per {name}", title=f"Orders per {name}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _latency_series(orders: pd.DataFrame, milestone: str, unit: float) -> pd.DataFrame:
    lat = milestone_latency(orders, milestone).rename("lat")
    b = (orders["t_submitted"] // unit).rename("bin")
    g = pd.concat([b, lat], axis=1).dropna().groupby("bin")["lat"]
    df = pd.DataFrame({"p50": g.quantile(0.5), "p95": g.quantile(0.95)})
    if df.empty:
        return df
    # Empty bins (nights, weekends) as NaN, so the lines break instead of bridging the gap.
    return df.reindex(np.arange(df.index.min(), df.index.max() + 1))


def chart_latency(orders: pd.DataFrame, faults: Sequence[FaultWindow], sim_s: float) -> bytes:
    unit, name = _unit(_span(orders, sim_s))
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax = fig.add_subplot()
    for label in ("erp_accepted", "ready_to_ship"):
        if len(orders) and orders[f"t_{label}"].notna().any():
            s = _latency_series(orders, label, unit)
            ax.plot(s.index, s["p50"], lw=1, label=f"{label} p50")
            ax.plot(s.index, s["p95"], lw=1, ls="--", label=f"{label} p95")
    _shade(ax, faults, unit)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set(xlabel=f"simulated {name} (order submitted)", ylabel="seconds", title="Milestone latency")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _backlog_series(orders: pd.DataFrame, sim_s: float) -> tuple[np.ndarray, np.ndarray]:
    span = _span(orders, sim_s)
    times = np.linspace(0, span, 2000)
    return times, (backlog_at(orders, times) if len(orders) else np.zeros_like(times))


def chart_backlog(orders: pd.DataFrame, faults: Sequence[FaultWindow], sim_s: float) -> bytes:
    unit, name = _unit(_span(orders, sim_s))
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax = fig.add_subplot()
    t, b = _backlog_series(orders, sim_s)
    ax.plot(t / unit, b, lw=1, label="in flight (submitted, not yet settled)")
    _shade(ax, faults, unit)
    ax.set(xlabel=f"simulated {name}", ylabel="orders", title="Integration backlog")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def chart_fallout(orders: pd.DataFrame) -> bytes:
    vc = orders["outcome"].value_counts() if len(orders) else pd.Series(dtype=int)
    names = [o for o in OUTCOMES if vc.get(o, 0) > 0] or ["completed"]
    vals = [int(vc.get(o, 0)) for o in names]
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.barh(names, vals, color=[_COLORS.get(n, "#c62828") for n in names])
    ax.bar_label(bars, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set(xlabel="orders", title="Outcome by category")
    return _png(fig)


def charts(orders: pd.DataFrame, faults: Sequence[FaultWindow] = (), sim_s: float = 0.0) -> dict[str, bytes]:
    return {
        "orders": chart_orders(orders, faults, sim_s),
        "latency": chart_latency(orders, faults, sim_s),
        "backlog": chart_backlog(orders, faults, sim_s),
        "fallout": chart_fallout(orders),
    }


# --------------------------------------------------------------------------------------- html


def _fmt(v: Any) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def flat_kpis(kpis: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """kpis.json flattened to dotted names (``latency_s.erp_accepted.p95``) for tables."""
    rows: list[tuple[str, Any]] = []

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, Mapping):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(f"{prefix}[{x.get('name', i) if isinstance(x, Mapping) else i}]", x)
        else:
            rows.append((prefix, v))

    walk("", kpis)
    return rows


def render_html(
    title: str,
    kpis: Mapping[str, Any],
    pngs: Mapping[str, bytes],
    meta: Mapping[str, Any] | None = None,
    breaches: Sequence[str] = (),
) -> str:
    kpi_rows = "\n".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in flat_kpis(kpis))
    imgs = "\n".join(
        f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,{base64.b64encode(b).decode()}">'
        f"<figcaption>{html.escape(n)}</figcaption></figure>"
        for n, b in pngs.items()
    )
    slo = (
        "<p class=ok>All SLOs met.</p>"
        if not breaches
        else "<ul class=bad>" + "".join(f"<li>{html.escape(b)}</li>" for b in breaches) + "</ul>"
    )
    meta_txt = html.escape(json.dumps(dict(meta or {}), indent=2, default=str))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }} td {{ border-bottom: 1px solid #eee; padding: 2px 12px; }}
td:nth-child(2) {{ text-align: right; font-variant-numeric: tabular-nums; }}
img {{ max-width: 100%; }} .ok {{ color: #2e7d32; }} .bad {{ color: #c62828; }}
pre {{ background: #f6f6f6; padding: 1em; font-size: 12px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>SLOs</h2>{slo}
<h2>Charts</h2>
{imgs}
<h2>KPIs</h2>
<table>{kpi_rows}</table>
<h2>Run</h2><pre>{meta_txt}</pre>
</body></html>
"""


def write_report(
    out: str | Path,
    orders: pd.DataFrame,
    kpis: Mapping[str, Any],
    *,
    faults: Sequence[FaultWindow] = (),
    title: str = "Distribution Twin run",
    meta: Mapping[str, Any] | None = None,
    breaches: Sequence[str] = (),
) -> Path:
    """Write ``chart_<name>.png`` files and ``report.html`` (charts embedded) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pngs = charts(orders, faults, float(kpis.get("sim_s") or 0.0))
    for name, data in pngs.items():
        (out / f"chart_{name}.png").write_bytes(data)
    path = out / "report.html"
    path.write_text(render_html(title, kpis, pngs, meta, breaches), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------- compare


def overlay_chart(
    runs: Sequence[tuple[str, pd.DataFrame, Sequence[FaultWindow], float]], path: str | Path | None = None
) -> bytes:
    """Two (or more) runs on one figure: backlog and ready-to-ship p95 latency over time."""
    span = max((_span(o, s) for _, o, _, s in runs), default=1.0)
    unit, name = _unit(span)
    fig = Figure(figsize=(9, 6), layout="constrained")
    ax_b, ax_l = fig.subplots(2, 1, sharex=True)
    for label, orders, _faults, sim_s in runs:
        t, b = _backlog_series(orders, sim_s)
        ax_b.plot(t / unit, b, lw=1, label=label)
        if len(orders) and orders["t_ready_to_ship"].notna().any():
            s = _latency_series(orders, "ready_to_ship", unit)
            ax_l.plot(s.index, s["p95"], lw=1, label=label)
    if runs:
        _shade(ax_b, runs[0][2], unit)
        _shade(ax_l, runs[0][2], unit)
    ax_b.set(ylabel="orders in flight", title="Backlog")
    ax_l.set(xlabel=f"simulated {name}", ylabel="seconds", title="ready_to_ship latency p95")
    ax_l.set_yscale("symlog", linthresh=1.0)
    for ax in (ax_b, ax_l):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    data = _png(fig)
    if path is not None:
        Path(path).write_bytes(data)
    return data
