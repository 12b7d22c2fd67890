"""The lean HTTP/1.1 transport of the live integration (sim/http11.py), against
a scripted loopback server: keep-alive reuse, server-side closes, drops, chunked and read-to-EOF
bodies, timeouts, and the httpx-facing wrapper."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from sim.http11 import Http11Transport

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # -> keep the connection open


async def serve(handler: Handler) -> tuple[asyncio.Server, int, list[int]]:
    """A server that reads one request head (+ Content-Length body) at a time; counts connections."""
    conns: list[int] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                n = next(
                    (int(x.split(b":", 1)[1]) for x in head.split(b"\r\n") if x.lower().startswith(b"content-length:")),
                    0,
                )
                body = await reader.readexactly(n)
                if not await handler(head + body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], conns


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body),
        extra,
        body,
    )


def test_keep_alive_reuse_and_server_close() -> None:
    seen: list[bytes] = []

    async def handler(req: bytes, w: asyncio.StreamWriter) -> bool:
        seen.append(req)
        close = b"close-me" in req
        w.write(ok(extra=b"Connection: close\r\n" if close else b""))
        await w.drain()
        return not close

    async def main() -> None:
        server, port, conns = await serve(handler)
        t = Http11Transport()
        try:
            for _ in range(3):
                status, headers, body = await t.exchange("127.0.0.1", port, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
                assert (status, body) == (200, b'{"ok":true}')
            assert len(conns) == 1  # one connection, reused
            await t.exchange("127.0.0.1", port, b"GET /close-me HTTP/1.1\r\nHost: x\r\n\r\n")
            await t.exchange("127.0.0.1", port, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
            assert len(conns) == 2  # the server said close: a fresh connection
            # httpx-facing wrapper: Content-Length added, headers passed, response decoded
            r = await t.handle_async_request(
                httpx.Request("POST", f"http://127.0.0.1:{port}/p?q=1", json={"a": 1}, headers={"X-Y": "z"})
            )
            assert r.status_code == 200 and r.json() == {"ok": True}
            assert seen[-1].startswith(b"POST /p?q=1 HTTP/1.1\r\n")
            assert b"content-length: 7" in seen[-1].lower() and b"x-y: z" in seen[-1].lower()
        finally:
            await t.aclose()
            server.close()

    asyncio.run(main())


def test_chunked_and_read_to_eof_bodies() -> None:
    async def handler(req: bytes, w: asyncio.StreamWriter) -> bool:
        if b"/chunked" in req:
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            await w.drain()
            return True
        w.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof")
        await w.drain()
        return False

    async def main() -> None:
        server, port, _ = await serve(handler)
        t = Http11Transport()
        try:
            assert (await t.exchange("127.0.0.1", port, b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n"))[2] == b"abcde"
            assert (await t.exchange("127.0.0.1", port, b"GET /eof HTTP/1.1\r\nHost: x\r\n\r\n"))[2] == b"until-eof"
        finally:
            await t.aclose()
            server.close()

    asyncio.run(main())


def test_drop_timeout_and_refused_are_httpx_errors() -> None:
    async def handler(req: bytes, w: asyncio.StreamWriter) -> bool:
        if b"/slow" in req:
            await asyncio.sleep(5)
        return False  # drop without answering

    async def main() -> None:
        server, port, conns = await serve(handler)
        t = Http11Transport()
        try:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await t.exchange("127.0.0.1", port, b"GET /drop HTTP/1.1\r\nHost: x\r\n\r\n")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await t.exchange("127.0.0.1", port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            assert not t._busy and not any(t._idle.values())  # the cut-off connection is not pooled
        finally:
            await t.aclose()
            server.close()
            await server.wait_closed()
        with pytest.raises(httpx.ConnectError):
            await Http11Transport().exchange("127.0.0.1", port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(httpx.UnsupportedProtocol):
            await Http11Transport().handle_async_request(httpx.Request("GET", "https://example.invalid/"))

    asyncio.run(main())
