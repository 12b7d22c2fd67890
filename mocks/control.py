"""The control and observation API every mock serves under ``/_twin`` (admin token required).

Routes (all but ``health`` need header ``X-Twin-Admin-Token``; 401 without or with a wrong one):

- ``GET    /_twin/faults``            windows and which are active now
- ``PUT    /_twin/faults``            add or replace one window (a ``FaultWindow``; ``system`` defaults to
  this mock; ``?relative=true`` counts ``start`` from now), or replace all with a JSON list
- ``DELETE /_twin/faults/{name}``     remove one window (404 if unknown); ``DELETE /_twin/faults`` all
- ``GET|PUT /_twin/profile``          the ``ApiProfile`` (latency, error rate, limits, idempotency)
- ``POST   /_twin/reset``             fresh core state, ledger, idempotency records, journals
- ``GET    /_twin/ledger?since=&limit=``  ledger entries as JSON; ``GET /_twin/ledger.ndjson`` export
- ``GET    /_twin/requests?since=&limit=`` the request journal
- ``GET    /_twin/webhooks?since=&limit=`` webhook events and delivery attempts (if a deliverer is set)
- ``GET    /_twin/health``            liveness (no token)
- ``GET    /_twin/clock``             simulated now, lag, max lag seen
- ``PUT    /_twin/clock``             ``{"epoch": <Unix seconds>}``: simulated time 0 is that wall instant
  (live runs align every mock on one epoch); 409 once the env has moved past 0

Every handler (and the admin check) is ``async def``, so it runs on the event loop that owns the
core, the ledger and the journals. A plain ``def`` would run in a worker thread while the loop keeps
appending to them: under load a ledger or journal read then failed with "deque mutated during
iteration" (a 500), and a reset raced the requests in flight.

Validation errors answer 422 ``{error: "invalid_fault_window"|"invalid_profile", problems: [...]}``
with each problem naming the field, in the scenario loader's format.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from sim.scenario import ApiProfile, FaultWindow, format_validation_error

ADMIN_HEADER = "X-Twin-Admin-Token"


async def require_admin(request: Request) -> None:
    expected = getattr(request.app.state, "admin_token", None)
    given = request.headers.get(ADMIN_HEADER)
    if not expected or not given or not hmac.compare_digest(given.encode(), str(expected).encode()):
        raise HTTPException(401, detail=f"missing or wrong {ADMIN_HEADER}")


def _invalid(kind: str, label: str, err: ValidationError) -> JSONResponse:
    return JSONResponse({"error": kind, "problems": format_validation_error(label, err)}, status_code=422)


def _engine(request: Request) -> Any:
    fe = request.app.state.gateway.fault_engine
    if fe is None:
        raise HTTPException(409, detail="this mock runs without a fault engine")
    return fe


def _now(request: Request) -> float:
    return request.app.state.core.env.now


public = APIRouter(prefix="/_twin", tags=["twin"])
router = APIRouter(prefix="/_twin", tags=["twin"], dependencies=[Depends(require_admin)])


@public.get("/health")
async def health(request: Request) -> dict[str, Any]:
    st = request.app.state
    clock = getattr(st, "clock", None)
    failed = clock is not None and clock.failure is not None
    return {"status": "failed" if failed else "ok", "system": st.core.system, "now": st.core.env.now}


@router.get("/faults")
async def list_faults(request: Request) -> dict[str, Any]:
    fe = _engine(request)
    return {"windows": [w.model_dump(mode="json") for w in fe.windows], "active": fe.active(_now(request))}


def _parse_window(raw: Any, system: str, now: float, relative: bool, label: str) -> FaultWindow | JSONResponse:
    if isinstance(raw, dict):
        raw = {"system": system, **raw}
    try:
        w = FaultWindow.model_validate(raw)
    except ValidationError as e:
        return _invalid("invalid_fault_window", label, e)
    if w.system is not None and str(w.system) != system:
        return JSONResponse(
            {"error": "invalid_fault_window", "problems": [f"{label}: system: this mock is {system}, got {w.system}"]},
            status_code=422,
        )
    if relative:
        w = w.model_copy(update={"start": w.start + now})
    return w


@router.put("/faults")
async def put_faults(request: Request, relative: bool = False) -> Any:
    fe = _engine(request)
    try:
        raw = await request.json()
    except ValueError:
        return JSONResponse({"error": "invalid_json", "problems": ["fault: body is not JSON"]}, status_code=422)
    now = _now(request)
    if isinstance(raw, list):
        parsed = [_parse_window(r, fe.system, now, relative, f"faults.{i}") for i, r in enumerate(raw)]
        bad = [p for p in parsed if isinstance(p, JSONResponse)]
        if bad:
            return JSONResponse(
                {"error": "invalid_fault_window", "problems": [x for b in bad for x in json.loads(b.body)["problems"]]},
                status_code=422,
            )
        fe.set_windows(parsed)  # type: ignore[arg-type]
        return await list_faults(request)
    w = _parse_window(raw, fe.system, now, relative, "fault")
    if isinstance(w, JSONResponse):
        return w
    fe.add_window(w)
    return {"window": w.model_dump(mode="json"), "active": w.name in fe.active(now)}


@router.delete("/faults/{name}")
async def delete_fault(request: Request, name: str) -> dict[str, Any]:
    if not _engine(request).remove_window(name):
        raise HTTPException(404, detail=f"no fault window named {name!r}")
    return {"removed": name}


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    fe = _engine(request)
    names = [w.name for w in fe.windows]
    fe.set_windows([])
    return {"removed": names}


@router.get("/profile")
async def get_profile(request: Request) -> dict[str, Any]:
    return _engine(request).profile.model_dump(mode="json")


@router.put("/profile")
async def put_profile(request: Request) -> Any:
    fe = _engine(request)
    try:
        raw = await request.json()
        profile = ApiProfile.model_validate(raw)
    except ValueError as e:
        if isinstance(e, ValidationError):
            return _invalid("invalid_profile", "profile", e)
        return JSONResponse({"error": "invalid_json", "problems": ["profile: body is not JSON"]}, status_code=422)
    fe.set_profile(profile)
    request.app.state.gateway.idempotency = profile.idempotency
    return profile.model_dump(mode="json")


@router.post("/reset")
async def reset(request: Request) -> dict[str, Any]:
    st = request.app.state
    core = st.core
    if callable(getattr(core, "reset", None)):
        core.reset()
    elif getattr(st, "reset_factory", None) is not None:
        # On the loop too: a factory may bind the new core to loop-owned parts (the webhook
        # deliverer's clock) and start processes that emit events.
        core = st.reset_factory()
        st.core = core
        st.gateway.core = core
        clock = getattr(st, "clock", None)
        if clock is not None and clock.env is not core.env:
            clock.rebind(core.env)
    else:
        raise HTTPException(409, detail="this core has no reset() and the app no reset_factory")
    core.ledger.clear()
    st.gateway.reset()
    st.journal.clear()
    return {"reset": True, "system": core.system, "now": core.env.now}


@router.get("/ledger")
async def ledger(request: Request, since: int = 0, limit: int = 1000) -> dict[str, Any]:
    led = request.app.state.core.ledger
    entries = led.since(since, max(1, min(limit, 100_000)))
    return {
        "system": led.system,
        "entries": [e.to_dict() for e in entries],
        "next": entries[-1].seq if entries else since,
        "dropped": led.dropped,
    }


@router.get("/ledger.ndjson")
async def ledger_ndjson(request: Request, since: int = 0) -> StreamingResponse:
    entries = request.app.state.core.ledger.since(since)

    def lines() -> Iterator[bytes]:
        for e in entries:
            yield json.dumps(e.to_dict(), separators=(",", ":"), default=str).encode() + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/requests")
async def requests_journal(request: Request, since: int = 0, limit: int = 1000) -> dict[str, Any]:
    return {"requests": request.app.state.journal.since(since, max(1, limit))}


@router.get("/webhooks")
async def webhooks(request: Request, limit: int = 1000) -> dict[str, Any]:
    d = getattr(request.app.state, "deliverer", None)
    if d is None:
        return {"events": [], "attempts": [], "stats": None}
    return {
        "events": list(d.events)[-limit:],
        "attempts": [a.to_dict() for a in list(d.attempts)[-limit:]],
        "stats": d.stats(),
    }


@router.get("/clock")
async def clock(request: Request) -> dict[str, Any]:
    c = getattr(request.app.state, "clock", None)
    if c is None:
        return {"now": _now(request), "lag_s": 0.0, "max_lag_seen_s": 0.0, "lag_exceeded": False, "running": False}
    return c.status()


@router.put("/clock")
async def put_clock(request: Request) -> Any:
    c = getattr(request.app.state, "clock", None)
    if c is None:
        raise HTTPException(409, detail="this mock runs without a live clock")
    try:
        epoch = float((await request.json())["epoch"])
    except (ValueError, KeyError, TypeError):
        return JSONResponse(
            {"error": "invalid_clock", "field": "epoch", "message": "epoch: a number (Unix seconds)"}, 422
        )
    if c.env.now > 0:
        # The world has already moved: re-anchoring would make simulated time jump or run backwards.
        return JSONResponse({"error": "clock_started", "field": "epoch", "now": c.env.now}, 409)
    c.anchor_epoch(epoch)
    return c.status()
