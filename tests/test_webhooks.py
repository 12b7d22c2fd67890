"""Webhook signing and delivery (retries, faults) against an in-process ASGI receiver."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import simpy
from fastapi.responses import JSONResponse
from test_gateway_support import ORDER, DummyCore

from mocks.core.base import Request, WebhookEvent
from mocks.faults import FaultEngine
from mocks.webhooks import WebhookDeliverer, envelope, occurred_at_iso, retry_delays, sign, verify
from sim.distributions import Fixed
from sim.rng import Streams
from sim.scenario import ApiProfile, FaultWindow, WebhookPolicy

SECRET = "s3cret"


class Receiver:
    """An integration's webhook endpoint (raw ASGI): fails the first ``fail_first`` posts per event id."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.seen: list[tuple[str, bytes, dict[str, str]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            m = await receive()
            chunks.append(m.get("body", b""))
            if not m.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        eid = headers["x-twin-event-id"]
        self.seen.append((eid, b"".join(chunks), headers))
        n = sum(1 for e, _, _ in self.seen if e == eid)
        resp = JSONResponse({"ok": False}, 503) if n <= self.fail_first else JSONResponse({"ok": True})
        await resp(scope, receive, send)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self), base_url="http://sut")


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, s: float) -> None:
        self.calls.append(s)
        await asyncio.sleep(0)


def ev(i: int = 1, type_: str = "SalesOrder.Released", t: float = 3600.0) -> WebhookEvent:
    return WebhookEvent(f"erp-evt-{i:08d}", type_, "erp", t, {"SalesOrderNo": f"SO-{i}", "ExtRef": "801x"})


def W(name: str, kind: str, **kw: Any) -> FaultWindow:
    return FaultWindow.model_validate({"name": name, "system": "erp", "kind": kind, "start": 0, "duration": 1e9, **kw})


def fe(*windows: FaultWindow) -> FaultEngine:
    return FaultEngine("erp", ApiProfile(), list(windows), Streams(5))


def deliver(
    events: list[WebhookEvent], recv: Receiver, engine: FaultEngine | None = None, **kw: Any
) -> WebhookDeliverer:
    async def main() -> WebhookDeliverer:
        async with recv.client() as client:
            d = WebhookDeliverer("http://sut", SECRET, kw.pop("policy", WebhookPolicy()), engine, client, **kw)
            for e in events:
                d.enqueue(e)
            assert await d.drain(timeout=5)
            return d

    return asyncio.run(main())


def test_sign_and_verify() -> None:
    body = b'{"id":"e1"}'
    sig = sign(SECRET, body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify(SECRET, body, sig)
    assert not verify(SECRET, body + b" ", sig)
    assert not verify("other", body, sig)
    assert not verify(SECRET, body, None)


def test_envelope_matches_the_contract() -> None:
    e = envelope(ev(t=90061.5))
    assert set(e) == {"id", "type", "source", "occurred_at", "data"}
    assert e["occurred_at"] == "2026-07-07T01:01:01.500Z" == occurred_at_iso(90061.5)


def test_retry_schedule_doubles() -> None:
    assert retry_delays(WebhookPolicy(max_attempts=4, backoff=30)) == [30, 60, 120]


def test_retries_until_2xx_with_signed_envelope() -> None:
    recv, sleeps = Receiver(fail_first=2), Sleeps()
    d = deliver([ev()], recv, sleep=sleeps, policy=WebhookPolicy(max_attempts=5, backoff=10))
    assert len(recv.seen) == 3 and sleeps.calls == [10, 20]
    assert [a.status for a in d.attempts] == [503, 503, 200] and d.attempts[-1].outcome == "delivered"
    eid, body, headers = recv.seen[-1]
    assert verify(SECRET, body, headers["x-twin-signature"]) and headers["x-twin-timestamp"].endswith("Z")
    assert json.loads(body)["id"] == eid == "erp-evt-00000001"
    assert d.stats()["delivered"] == 1 and d.events[0]["outcome"] == "delivered"


def test_gives_up_after_max_attempts() -> None:
    recv = Receiver(fail_first=99)
    d = deliver([ev()], recv, sleep=Sleeps(), policy=WebhookPolicy(max_attempts=3))
    assert len(recv.seen) == 3 and d.failed == 1 and d.events[0]["outcome"] == "failed"


def test_duplicate_delivers_the_same_event_twice() -> None:
    recv = Receiver()
    deliver([ev()], recv, fe(W("dup", "webhook_duplicate")), sleep=Sleeps())
    assert [e for e, _, _ in recv.seen] == ["erp-evt-00000001"] * 2


def test_out_of_order_lets_later_events_overtake() -> None:
    recv = Receiver()
    hold_first = W("ooo", "webhook_out_of_order", endpoint="First", latency=Fixed(value=30))
    deliver([ev(1, "First"), ev(2, "Second")], recv, fe(hold_first), delay_scale=0.001)
    assert [e for e, _, _ in recv.seen] == ["erp-evt-00000002", "erp-evt-00000001"]


def test_drop_then_redelivery_and_drop_forever() -> None:
    recv, sleeps = Receiver(), Sleeps()
    d = deliver([ev()], recv, fe(W("drop", "webhook_drop", redeliver_after=600)), sleep=sleeps)
    assert sleeps.calls == [600] and len(recv.seen) == 1
    assert [a.outcome for a in d.attempts] == ["dropped", "delivered"]
    recv = Receiver()
    d = deliver([ev()], recv, fe(W("lost", "webhook_drop", redeliver_after=None)), sleep=Sleeps())
    assert recv.seen == [] and d.dropped == 1 and d.events[0]["outcome"] == "dropped"


def test_delay_holds_the_event_back() -> None:
    sleeps = Sleeps()
    deliver([ev()], Receiver(), fe(W("slow", "webhook_delay", latency=Fixed(value=45))), sleep=sleeps, delay_scale=2)
    assert sleeps.calls == [90]


def test_malformed_body_is_signed_but_not_json() -> None:
    recv = Receiver()
    deliver([ev()], recv, fe(W("bad", "webhook_malformed")), sleep=Sleeps())
    _, body, headers = recv.seen[0]
    assert verify(SECRET, body, headers["x-twin-signature"])
    try:
        json.loads(body)
        raise AssertionError("expected malformed JSON")
    except json.JSONDecodeError:
        pass


def test_contract_drift_applies_to_webhook_data() -> None:
    recv = Receiver()
    drift = W("drift", "contract_drift", endpoint="SalesOrder.*", field="ExtRef", rename_to="ExternalReference")
    deliver([ev()], recv, fe(drift), sleep=Sleeps())
    assert json.loads(recv.seen[0][1])["data"] == {"SalesOrderNo": "SO-1", "ExternalReference": "801x"}


def test_core_emit_is_enqueue_and_events_wait_for_a_loop() -> None:
    recv = Receiver()
    d = WebhookDeliverer("http://sut", SECRET, sleep=Sleeps())
    core = DummyCore(simpy.Environment(), emit=d.enqueue)
    core.handle(Request("create_order", ORDER))
    assert d.pending == 1  # no running loop yet: kept in the backlog

    async def main() -> None:
        async with recv.client() as client:
            d._client = client
            assert await d.drain(timeout=5)

    asyncio.run(main())
    assert json.loads(recv.seen[0][1])["type"] == "SalesOrder.Created"


def test_no_target_is_recorded() -> None:
    async def main() -> WebhookDeliverer:
        d = WebhookDeliverer({"crm": "http://x/webhooks/crm"}, SECRET)
        d.enqueue(ev())
        await d.drain(timeout=1)
        return d

    d = asyncio.run(main())
    assert d.attempts[0].outcome == "no_target"


def test_delivery_over_loopback_with_the_default_client_keeps_alive_and_times_out() -> None:
    """Without a client of its own the deliverer speaks HTTP/1.1 on a kept-alive connection to an
    http:// target; an attempt that gets no answer ends after ``policy.timeout`` and is retried."""

    async def main() -> tuple[WebhookDeliverer, list[bytes], int]:
        heads: list[bytes] = []
        connections = 0
        hang_ids = {"erp-evt-00000099"}

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next(
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                    body = await reader.readexactly(length)
                    heads.append(head)
                    if json.loads(body)["id"] in hang_ids:
                        await asyncio.sleep(30)  # never answers within the policy's timeout
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        policy = WebhookPolicy(max_attempts=2, backoff=0.01, timeout=0.3)
        d = WebhookDeliverer(f"http://127.0.0.1:{port}", SECRET, policy)
        for i in range(3):
            d.enqueue(ev(i))
            assert await d.drain(timeout=5)
        d.enqueue(ev(99))
        assert await d.drain(timeout=5)
        await d.aclose()
        server.close()
        return d, heads, connections

    d, heads, connections = asyncio.run(main())
    ok = [a for a in d.attempts if a.outcome == "delivered"]
    assert [a.event_id for a in ok] == ["erp-evt-00000000", "erp-evt-00000001", "erp-evt-00000002"]
    assert connections <= 2  # the three deliveries shared one connection; the hung one was dropped
    hung = [a for a in d.attempts if a.event_id == "erp-evt-00000099"]
    assert [(a.attempt, a.outcome) for a in hung] == [(1, "error"), (2, "error")]
    assert all(a.error and "0.3 s" in a.error for a in hung)
    assert all(b"x-twin-signature" in h.lower() for h in heads)
