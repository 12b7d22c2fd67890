"""The virtual network's call and webhook semantics on a dummy core."""

from __future__ import annotations

import simpy

from mocks.core.base import Request, Response, Route, SystemCore
from mocks.faults import FaultEngine
from mocks.gateway import Gateway
from reference_integration.effects import Call, Result
from reference_integration.errors import CallTimeout, ConnectionFailed, MalformedResponse
from sim.network import SimNetwork, WebhookNetwork
from sim.rng import Streams
from sim.scenario import ApiProfile, FaultWindow, WebhookPolicy


class Dummy(SystemCore):
    system = "erp"
    routes = {"create": Route("POST", "/things", mutating=True), "get": Route("GET", "/things")}

    def op_create(self, req: Request) -> Response:
        self.record(req, "thing.created", "T", ref=req.body["ref"])
        return Response(201, {"n": len(self.ledger)})

    def op_get(self, req: Request) -> Response:
        return Response(200, {"n": len(self.ledger)})


def _net(*windows: FaultWindow, latency: float = 0.1):
    env = simpy.Environment()
    streams = Streams(1)
    core = Dummy(env)
    engine = FaultEngine("erp", ApiProfile(latency=latency), windows, streams)
    gw = Gateway(core, "honour", engine)
    return env, core, SimNetwork(env, {"erp": gw}, streams=streams)


def _send(env, net, call, timeout=5.0, headers=None):
    out: dict = {}

    def proc():
        t0 = env.now
        out["r"] = yield from net.send(call, headers or {"X-Client-Id": "it"}, timeout)
        out["dt"] = env.now - t0

    env.process(proc())
    env.run()
    return out["r"], out["dt"]


CREATE = Call("erp", "create", {"ref": "801A"}, correlation_id="c1")


def test_ok_after_latency_with_headers_carried():
    env, core, net = _net()
    r, dt = _send(env, net, Call("erp", "create", {"ref": "801A"}, idempotency_key="so:801A", correlation_id="c1"))
    assert isinstance(r, Result) and r.status == 201 and dt == 0.1
    (e,) = list(core.ledger)
    assert (e.t, e.idempotency_key, e.correlation_id) == (0.1, "so:801A", "c1")


def test_outage_answers_503_without_processing():
    w = FaultWindow(name="down", system="erp", kind="outage", start=0, duration=60, retry_after=7)
    env, core, net = _net(w)
    r, _ = _send(env, net, CREATE)
    assert r.status == 503 and r.headers["retry-after"] == "7"
    assert len(core.ledger) == 0


def test_rate_limited_429_with_retry_after():
    w = FaultWindow(name="rl", system="erp", kind="rate_limit", start=0, duration=60, limit=1, per=10)
    env, core, net = _net(w)
    assert _send(env, net, CREATE)[0].status == 201
    r, _ = _send(env, net, CREATE)
    assert r.status == 429 and int(r.headers["retry-after"]) >= 1
    assert len(core.ledger) == 1


def test_timeout_after_commit_processes_then_times_out_at_deadline():
    w = FaultWindow(name="hang", system="erp", kind="timeout", start=0, duration=60, after_commit=True)
    env, core, net = _net(w)
    r, dt = _send(env, net, CREATE, timeout=5)
    assert isinstance(r, CallTimeout) and dt == 5
    assert [e.t for e in core.ledger] == [0.1]


def test_timeout_before_commit_does_not_process():
    w = FaultWindow(name="hang", system="erp", kind="timeout", start=0, duration=60, after_commit=False)
    env, core, net = _net(w)
    r, dt = _send(env, net, CREATE, timeout=5)
    assert isinstance(r, CallTimeout) and dt == 5 and len(core.ledger) == 0


def test_slow_server_commits_after_client_gave_up_so_naive_retry_duplicates():
    w = FaultWindow(name="slow", system="erp", kind="latency", start=0, duration=60, latency=10)
    env, core, net = _net(w)
    r, dt = _send(env, net, CREATE, timeout=5)
    assert isinstance(r, CallTimeout) and dt == 5
    assert [e.t for e in core.ledger] == [10]  # still processed at arrival
    assert net.stats.late_commits == 1
    r2, _ = _send(env, net, CREATE, timeout=5)  # naive retry, no Idempotency-Key
    assert isinstance(r2, CallTimeout) and len(core.ledger) == 2


def test_slow_server_with_idempotency_key_is_not_duplicated():
    w = FaultWindow(name="slow", system="erp", kind="latency", start=0, duration=12, latency=10)
    env, core, net = _net(w)
    keyed = Call("erp", "create", {"ref": "801A"}, idempotency_key="so:801A")
    assert isinstance(_send(env, net, keyed)[0], CallTimeout)
    r, _ = _send(env, net, keyed)  # t=10: first done, stored -> replayed (window still on: slow)
    assert isinstance(r, CallTimeout)
    r3, _ = _send(env, net, keyed)  # t=20: window over
    assert r3.status == 201 and r3.headers.get("idempotent-replayed") == "true"
    assert len(core.ledger) == 1


def test_reset_and_truncate():
    w = FaultWindow(name="rst", system="erp", kind="reset", start=0, duration=10, after_commit=True)
    t = FaultWindow(name="trunc", system="erp", kind="truncate", start=10, duration=10)
    env, core, net = _net(w, t)
    r, _ = _send(env, net, CREATE)
    assert isinstance(r, ConnectionFailed) and len(core.ledger) == 1
    env.run(until=11)
    r, _ = _send(env, net, CREATE)
    assert isinstance(r, MalformedResponse) and len(core.ledger) == 2


def test_unknown_system_is_a_connection_error():
    env, _, net = _net()
    r, _ = _send(env, net, Call("nope", "x"))
    assert isinstance(r, ConnectionFailed)


def _hooks(*windows: FaultWindow, accept=lambda env: True):
    env = simpy.Environment()
    streams = Streams(3)
    engine = FaultEngine("erp", ApiProfile(), windows, streams)
    got: list = []

    def dispatch(e):
        got.append((round(env.now, 3), e["id"]))
        return accept(env)

    wn = WebhookNetwork(env, dispatch, streams, engines={"erp": engine}, policy=WebhookPolicy(backoff=30))
    core = Dummy(env, emit=wn.emit_for("erp"))
    return env, core, wn, got


def test_webhook_delivered_after_latency():
    env, core, wn, got = _hooks()
    core.new_event("thing.created", {"ref": "801A"})
    env.run()
    assert len(got) == 1 and 0 < got[0][0] < 1 and got[0][1] == "erp-evt-00000001"


def test_webhook_duplicate_and_drop_with_redelivery():
    dup = FaultWindow(name="dup", system="erp", kind="webhook_duplicate", start=0, duration=10)
    drop = FaultWindow(name="drop", system="erp", kind="webhook_drop", start=10, duration=10, redeliver_after=600)
    env, core, wn, got = _hooks(dup, drop)
    core.new_event("thing.created", {})
    env.run(until=15)
    core.new_event("thing.created", {})
    env.run()
    assert [i for _, i in got] == ["erp-evt-00000001", "erp-evt-00000001", "erp-evt-00000002"]
    assert got[2][0] > 600 and wn.stats.webhook_dropped == 1


def test_webhook_not_accepted_is_retried_with_backoff():
    env, core, wn, got = _hooks(accept=lambda env: env.now > 60)
    core.new_event("thing.created", {})
    env.run()
    times = [t for t, _ in got]
    assert len(times) == 3 and 30 < times[1] < 31 and 90 < times[2] < 92


def test_virtual_envelope_equals_the_live_one() -> None:
    from mocks.core.base import WebhookEvent
    from mocks.webhooks import envelope as live
    from sim.network import envelope

    for start in (None, "2026-07-06T00:00:00", "2026-07-06T00:00:00-05:00", "2025-12-31T23:59:59.5+02:00"):
        for t in (0.0, 0.0004, 0.0005, 59.9996, 90061.5, 86400.0 * 400 + 0.123456, 1e7 / 3):
            ev = WebhookEvent("crm-evt-00000001", "order.submitted", "crm", t, {"Id": "801"})
            want = live(ev, data={"x": 1}) if start is None else live(ev, start, {"x": 1})
            assert envelope(ev, start, {"x": 1}) == want
            assert envelope(ev, start) == (live(ev) if start is None else live(ev, start))
