"""A lean keep-alive HTTP/1.1 transport for httpx, for the live service's calls to the mocks.

Why not httpx's default transport: in the live integration httpcore was ~60 % of the service's
CPU (anyio stream wrappers, h11 in pure Python, and before every request a scan of the pool
that ``poll()``s each idle connection to see whether the server closed it). Here a connection is
an ``asyncio.Protocol`` whose response parser is ``httptools`` (C, what uvicorn uses); the event
loop tells the protocol when the server closes, so reusing a connection needs no syscall, and a
request is one ``write`` of a pre-joined head and body.

It is still an ``httpx.AsyncBaseTransport``: requests and responses are ``httpx.Request`` and
``httpx.Response``, the runtime does not know which transport it talks to, and tests keep
``httpx.ASGITransport``. Scope is what the integration needs: plain ``http://``, no proxies,
no HTTP/2, bodies in memory. Errors are httpx's (``ConnectError``, ``RemoteProtocolError``,
``ReadError``), so the runtime's classification is unchanged. Nothing is retried here: a
request that fails is the caller's to retry, as with httpcore (a transparent retry would hide the
mocks' injected connection resets from the naive profile).

Connections are not capped here: the service bounds concurrency (``max_concurrency`` workflows,
each with one call in flight; the bulkhead per system on top), so at most that many connections
per origin exist; idle ones beyond ``max_idle`` per origin are closed.
"""

from __future__ import annotations

import asyncio
from collections import deque

import httptools
import httpx


class _Conn(asyncio.Protocol):
    """One TCP connection; one request at a time (no pipelining)."""

    __slots__ = ("transport", "parser", "waiter", "closed", "status", "headers", "body", "keep_alive", "to_eof")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.keep_alive = False
        self.to_eof = False

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for (idle connection): not ours to parse
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # pragma: no cover - we never ask to upgrade
            self._fail(httpx.RemoteProtocolError("unexpected protocol upgrade"))
        except httptools.HttpParserError as e:
            self._fail(httpx.RemoteProtocolError(f"malformed response: {e}"))

    def eof_received(self) -> bool | None:
        self.closed = True
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        w = self.waiter
        if w is not None and not w.done():
            if self.status and self.to_eof:
                # No Content-Length and not chunked: the body is whatever came before the close.
                self.keep_alive = False
                w.set_result(None)
                return
            if not w.done():
                msg = "server disconnected without sending a response"
                w.set_exception(httpx.RemoteProtocolError(msg) if exc is None else httpx.ReadError(f"{msg}: {exc}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.to_eof = (
            self.status >= 200
            and self.status not in (204, 304)
            and not any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in self.headers)
        )

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, exc: Exception) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()
        self.closed = True

    async def exchange(self, data: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        self.status, self.headers, self.body, self.keep_alive, self.to_eof = 0, [], [], False, False
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        await self.waiter
        self.waiter = None
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        return self.status, self.headers, body, self.keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Http11Transport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 over plain TCP; a pool of idle connections per (host, port)."""

    def __init__(self, max_idle: int = 64, connect_timeout: float = 10.0) -> None:
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int], deque[_Conn]] = {}
        self._busy: set[_Conn] = set()

    async def _connect(self, host: str, port: int) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(_Conn, host, port)
        except TimeoutError as e:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out") from e
        except OSError as e:
            raise httpx.ConnectError(f"connect to {host}:{port}: {e}") from e
        return conn

    async def exchange(self, host: str, port: int, data: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request already serialised (head and body, ``Content-Length`` included) on a pooled
        connection to (host, port); returns (status, raw headers, body). The runtime's hot path
        uses this directly and ``handle_async_request`` below wraps it for httpx."""
        key = (host, port)
        idle = self._idle.get(key)
        conn: _Conn | None = None
        while idle:
            c = idle.pop()  # most recently used first: least likely to have been closed
            if not c.closed:
                conn = c
                break
        if conn is None:
            conn = await self._connect(host, port)
        self._busy.add(conn)
        ok = False
        try:
            status, headers, content, keep_alive = await conn.exchange(data)
            ok = True
        finally:
            self._busy.discard(conn)
            if not ok:  # cancelled (timeout) or failed mid-exchange: the connection is unusable
                conn.close()
        if keep_alive and not conn.closed:
            q = self._idle.setdefault(key, deque())
            if len(q) < self.max_idle:
                q.append(conn)
            else:
                conn.close()
        else:
            conn.close()
        return status, headers, content

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"Http11Transport speaks plain http, not {url.scheme!r}")
        body = request.content  # the integration only sends in-memory bodies
        head = [f"{request.method} {url.raw_path.decode('ascii')} HTTP/1.1\r\n".encode("ascii")]
        has_length = False
        for name, value in request.headers.raw:
            low = name.lower()
            if low == b"content-length":
                has_length = True
            elif low == b"transfer-encoding":
                continue  # the body is in memory: always sent with a Content-Length
            head.append(name + b": " + value + b"\r\n")
        if not has_length and (body or request.method not in ("GET", "HEAD", "DELETE", "OPTIONS")):
            head.append(b"Content-Length: " + str(len(body)).encode() + b"\r\n")
        head.append(b"\r\n")
        head.append(body)
        status, headers, content = await self.exchange(url.host, url.port or 80, b"".join(head))
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def aclose(self) -> None:
        for q in self._idle.values():
            for c in q:
                c.close()
        self._idle.clear()
        for c in list(self._busy):
            c.close()
        self._busy.clear()


def transport(base_url: str) -> httpx.AsyncBaseTransport:
    """The transport for a live client of ``base_url``: this one for plain http (the mocks on
    loopback), httpx's own for anything else (https to real systems, proxies)."""
    return Http11Transport() if base_url.startswith("http://") else httpx.AsyncHTTPTransport()
