"""A network far away, on loopback: a TCP proxy that delays, caps, counts and breaks.

:class:`WanProxy` listens on 127.0.0.1 and forwards every connection to one upstream
(moto's S3 server, fake-gcs-server, ``ama-server``), so real clients (boto3,
google-cloud-storage, ``ama``) talk to a remote that is ``rtt_ms`` away without knowing it.
Nothing is mocked: the bytes are the real ones, only later, and sometimes not at all.

- Latency models a pipe, not a queue of sleeps: a chunk read at time t is written out at
  t + rtt/2, whatever came before it, so a stream of chunks takes rtt/2 once, not once per
  chunk; every connection has its own pipes, so connections never wait on each other.
- ``bandwidth`` (bytes per second, each direction) is one link shared by every connection,
  as a real uplink is: a chunk leaves once the link has carried the ones before it.
- The client-to-server stream is parsed as HTTP/1.1 (request line, headers, a
  Content-Length or chunked body), so the proxy counts requests, several per connection
  under keep-alive, and knows where each one starts: :attr:`WanProxy.requests` lists them.
- :class:`Fault` answers chosen requests itself (503, or S3's SlowDown 503) without
  forwarding them, or resets the connection (SO_LINGER 0, so the peer sees ECONNRESET)
  before forwarding the request, or after forwarding it and ``partial`` bytes of its answer.

Memory is bounded (each direction of each connection holds at most ``_QUEUE`` chunks of
``_READ`` bytes); :meth:`WanProxy.stop` closes every connection and joins the loop's thread.
The pytest fixture ``wan_proxy(host, port, rtt_ms=…, bandwidth=…, faults=…)`` starts proxies
that are stopped after the test; the benchmark uses the class directly.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

_READ = 64 * 1024
_QUEUE = 64
_MAX_HEAD = 64 * 1024  # longer than this without a blank line: not HTTP, just forward it
_RESET = object()  # a pipe's marker: abort the connection with a reset here
_EOF = object()  # a pipe's marker: the source closed its side

FAULT_KINDS = ("503", "slowdown", "reset", "reset-after")

_SLOWDOWN = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
             b"<Message>Please reduce your request rate.</Message>"
             b"<RequestId>wan-proxy</RequestId></Error>")


@dataclass
class Fault:
    """Which requests to break, and how.

    ``kind``: ``"503"`` (a plain ``503 Service Unavailable``), ``"slowdown"`` (a 503 with
    S3's ``SlowDown`` XML body), both answered by the proxy without forwarding the request;
    ``"reset"`` (reset the connection instead of forwarding the request); ``"reset-after"``
    (forward the request, pass on ``partial`` bytes of the answer, then reset).
    Requests considered: those whose method is in ``methods`` (all when None) and whose
    target contains ``path`` (when given). Among them, the ``nth`` (1-based) ones are
    broken, and each of the others with probability ``fraction`` (drawn from
    ``random.Random(seed)``), at most ``limit`` in all (None: no limit).
    ``retry_after`` adds a ``Retry-After`` header (seconds) to the 503s.
    """

    kind: str
    nth: Iterable[int] = ()
    fraction: float = 0.0
    seed: int = 0
    methods: Iterable[str] | None = None
    path: str | None = None
    limit: int | None = None
    partial: int = 0
    retry_after: int | None = None
    seen: int = field(default=0, init=False)
    injected: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}: one of {FAULT_KINDS}")
        self.nth = frozenset(self.nth)
        self.methods = None if self.methods is None else frozenset(
            m.upper() for m in self.methods)
        self._rng = random.Random(self.seed)

    def hits(self, method: str, target: str) -> bool:
        """Whether this request is one to break (counts it as seen, and as injected if so)."""
        if self.methods is not None and method not in self.methods:  # type: ignore[operator]
            return False
        if self.path is not None and self.path not in target:
            return False
        self.seen += 1
        if self.limit is not None and self.injected >= self.limit:
            return False
        hit = self.seen in self.nth or (self.fraction > 0 and self._rng.random() < self.fraction)  # type: ignore[operator]
        if hit:
            self.injected += 1
        return hit


@dataclass(frozen=True)
class Request:
    """One HTTP request the proxy saw: on which connection (1-based), and the fault
    it met, if any."""

    method: str
    target: str
    connection: int
    fault: str | None = None
    range: str | None = None  # the Range header, if any


class _Link:
    """One direction of the network: its latency, and its capacity shared by every
    connection (None: unlimited)."""

    def __init__(self, delay: float, bandwidth: float | None) -> None:
        self.delay = delay
        self.bandwidth = bandwidth
        self.free = 0.0  # when the link has carried everything handed to it so far

    def due(self, now: float, size: int) -> float:
        """When a chunk of ``size`` bytes handed over at ``now`` arrives at the far end."""
        if not self.bandwidth:
            return now + self.delay
        self.free = max(now, self.free) + size / self.bandwidth
        return self.free + self.delay


class _Pipe:
    """A queue of (due time, bytes or marker) written out in order, each at its time."""

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.queue: asyncio.Queue[tuple[float, Any]] = asyncio.Queue(_QUEUE)

    async def put(self, item: Any, size: int = 0) -> None:
        await self.queue.put((self.link.due(asyncio.get_running_loop().time(), size), item))

    def put_now(self, item: Any) -> None:
        """Queue without waiting (markers and the proxy's own small answers)."""
        self.queue.put_nowait((asyncio.get_running_loop().time() + self.link.delay, item))


class _RequestParser:
    """Splits a client's byte stream into HTTP/1.1 requests, incrementally.

    :meth:`feed` returns a list of actions: ``("data", bytes)`` to forward, and
    ``("request", method, target, headers)`` when a request's head is complete; the head's
    own bytes are in the ``"request"`` action's place (the caller forwards or drops them),
    ``("body", bytes)`` for body bytes of that request.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.state = "head"  # head, body, chunk-size, chunk-data, chunk-crlf, trailer, raw
        self.remaining = 0

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        actions: list[tuple[Any, ...]] = []
        self.buffer += data
        while self.buffer:
            if self.state == "raw":
                actions.append(("data", bytes(self.buffer)))
                self.buffer.clear()
            elif self.state == "head":
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > _MAX_HEAD:
                        self.state = "raw"
                        continue
                    break
                head = bytes(self.buffer[:end + 4])
                del self.buffer[:end + 4]
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                    actions.append(("data", head))
                    self.state = "raw"
                    continue
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                actions.append(("request", parts[0].upper(), parts[1], headers, head))
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    self.state = "chunk-size"
                else:
                    self.remaining = int(headers.get("content-length") or 0)
                    self.state = "body" if self.remaining else "head"
            elif self.state == "body" or self.state == "chunk-data":
                take = bytes(self.buffer[:self.remaining])
                del self.buffer[:len(take)]
                self.remaining -= len(take)
                actions.append(("body", take))
                if not self.remaining:
                    self.state = "head" if self.state == "body" else "chunk-crlf"
            elif self.state in ("chunk-size", "chunk-crlf", "trailer"):
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    break
                line = bytes(self.buffer[:end + 2])
                del self.buffer[:end + 2]
                actions.append(("body", line))
                if self.state == "chunk-crlf":
                    self.state = "chunk-size"
                elif self.state == "trailer":
                    self.state = "trailer" if line != b"\r\n" else "head"
                else:
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    self.remaining = size
                    self.state = "chunk-data" if size else "trailer"
        return actions


class WanProxy:
    """A proxy on 127.0.0.1 to ``upstream`` (host, port), ``rtt_ms`` away (see the module
    docstring). ``start()`` it (or use it as a context manager); :attr:`url` is its
    address; :attr:`requests`, :attr:`connections` what it saw."""

    def __init__(self, upstream: tuple[str, int], rtt_ms: float = 0.0,
                 bandwidth: float | None = None, faults: Iterable[Fault] = ()) -> None:
        if upstream[0] not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the proxy forwards to loopback only, not {upstream[0]}")
        self.upstream = upstream
        self.rtt_ms = rtt_ms
        self.bandwidth = bandwidth
        self.faults = list(faults)
        self.requests: list[Request] = []
        self.connections = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._links: tuple[_Link, _Link] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- counts --

    def count(self, method: str | None = None, path: str | None = None,
              fault: str | bool | None = None) -> int:
        """How many requests matched: ``method``, ``path`` in the target, and ``fault``
        (a kind, True for any fault, False for none, None for either)."""
        return sum(1 for r in list(self.requests)
                   if (method is None or r.method == method)
                   and (path is None or path in r.target)
                   and (fault is None or (r.fault == fault if isinstance(fault, str)
                                          else (r.fault is not None) == fault)))

    def reset_counts(self) -> None:
        """Forget the requests and connections seen so far (between benchmark steps)."""
        self.requests = []
        self.connections = 0

    def set_bandwidth(self, bandwidth: float | None) -> None:
        """Cap both links at ``bandwidth`` bytes per second from now on (None: uncapped),
        so a test pays for a slow link only in the step that needs one."""
        self.bandwidth = bandwidth
        for link in self._links or ():
            link.bandwidth = bandwidth

    # -- life --

    def start(self) -> WanProxy:
        """Listen on a free loopback port, in a thread of its own; return self."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._listen())
            except BaseException as e:  # noqa: BLE001 - handed to the starting thread
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"wan-proxy-{self.upstream[1]}",
                                        daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and end the thread; twice is fine."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)

    def __enter__(self) -> WanProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        delay = self.rtt_ms / 2000.0
        self._links = (_Link(delay, self.bandwidth), _Link(delay, self.bandwidth))
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # -- one connection --

    async def _serve(self, client_r: asyncio.StreamReader,
                     client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and self._links is not None
        self._tasks.add(task)
        self._writers.add(client_w)
        self.connections += 1
        number = self.connections
        server_w: asyncio.StreamWriter | None = None
        try:
            try:
                server_r, server_w = await asyncio.open_connection(*self.upstream)
            except OSError:
                _reset(client_w)
                return
            self._writers.add(server_w)
            up, down = _Pipe(self._links[0]), _Pipe(self._links[1])
            state = _Connection(number)
            writers = [
                asyncio.create_task(self._write(up, server_w, client_w, server_w, state)),
                asyncio.create_task(self._write(down, client_w, client_w, server_w, state)),
            ]
            workers = [*writers, asyncio.create_task(self._read_client(client_r, up, down, state)),
                       asyncio.create_task(self._read_server(server_r, down, state))]
            try:
                # Over when the server's end reached the client (or either was reset); a
                # client that only half-closes still gets its answer.
                await asyncio.wait(writers, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        finally:
            for writer in (client_w, server_w):
                if writer is not None:
                    self._writers.discard(writer)
                    writer.close()
            self._tasks.discard(task)

    async def _read_client(self, reader: asyncio.StreamReader, up: _Pipe, down: _Pipe,
                           state: _Connection) -> None:
        parser = _RequestParser()
        dropping = False  # the body of a request the proxy answered itself
        while not state.done:
            data = await _read(reader)
            if not data:
                await up.put(_EOF)
                return
            out = bytearray()
            for action in parser.feed(data):
                if action[0] == "data":
                    out += action[1]
                elif action[0] == "body":
                    if not dropping:
                        out += action[1]
                else:
                    _, method, target, headers, head = action
                    fault = next((f for f in self.faults if f.hits(method, target)), None)
                    self.requests.append(Request(method, target, state.number,
                                                 fault.kind if fault else None,
                                                 headers.get("range")))
                    dropping = False
                    if fault is None:
                        out += head
                        continue
                    if out:
                        await up.put(bytes(out), len(out))
                        out.clear()
                    if fault.kind in ("503", "slowdown"):
                        dropping = True
                        await up.put(_Answer(_unavailable(fault, headers), down), len(head))
                    elif fault.kind == "reset":
                        await up.put(_RESET, len(head))
                        return
                    else:  # reset-after: forward it, then cut its answer short
                        await up.put(_Doom(fault.partial, head), len(head))
            if out:
                await up.put(bytes(out), len(out))

    async def _read_server(self, reader: asyncio.StreamReader, down: _Pipe,
                           state: _Connection) -> None:
        while not state.done:
            data = await _read(reader)
            if not data:
                await down.put(_EOF)
                return
            if state.doomed is not None:
                cut = data[:state.doomed]
                state.doomed -= len(cut)
                if cut:
                    await down.put(cut, len(cut))
                if not state.doomed:
                    await down.put(_RESET)
                    return
                continue
            await down.put(data, len(data))

    async def _write(self, pipe: _Pipe, writer: asyncio.StreamWriter,
                     client_w: asyncio.StreamWriter, server_w: asyncio.StreamWriter,
                     state: _Connection) -> None:
        """Write what ``pipe`` carries to ``writer``, each chunk at its time. Returns when
        the far side's end has been passed on to the client, or the connection was reset."""
        loop = asyncio.get_running_loop()
        while True:
            due, item = await pipe.queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if item is _EOF:
                if not writer.transport.is_closing() and writer.can_write_eof():
                    writer.write_eof()
                if writer is client_w:
                    state.done = True
                    return
                continue
            if item is _RESET:
                state.done = True
                _reset(client_w)
                _reset(server_w)
                return
            if isinstance(item, _Answer):
                # The far end answers: the answer travels back like any of the server's.
                item.down.put_now(item.data)
                continue
            if isinstance(item, _Doom):
                state.doomed = item.partial
                item = item.head
            try:
                writer.write(item)
                await writer.drain()
            except ConnectionError:
                state.done = True
                _reset(client_w)
                _reset(server_w)
                return


@dataclass
class _Connection:
    number: int
    doomed: int | None = None  # bytes of the answer still to pass before a reset
    done: bool = False


@dataclass(frozen=True)
class _Answer:
    data: bytes
    down: _Pipe


@dataclass(frozen=True)
class _Doom:
    partial: int
    head: bytes


def _unavailable(fault: Fault, headers: dict[str, str]) -> bytes:
    body = _SLOWDOWN if fault.kind == "slowdown" else b"Service Unavailable\n"
    kind = "application/xml" if fault.kind == "slowdown" else "text/plain"
    lines = ["HTTP/1.1 503 Service Unavailable", f"Content-Type: {kind}",
             f"Content-Length: {len(body)}"]
    if fault.retry_after is not None:
        lines.append(f"Retry-After: {fault.retry_after}")
    if "100-continue" in headers.get("expect", "").lower():
        # The client holds its body back until told to go on: it will not come.
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the peer sees a reset (ECONNRESET), not an orderly end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


@pytest.fixture
def wan_proxy() -> Iterator[Callable[..., WanProxy]]:
    """Yield ``start(host, port, rtt_ms=0, bandwidth=None, faults=())`` -> a started
    :class:`WanProxy` in front of ``host:port``; every proxy is stopped after the test."""
    started: list[WanProxy] = []

    def start(host: str, port: int, rtt_ms: float = 0.0, bandwidth: float | None = None,
              faults: Iterable[Fault] = ()) -> WanProxy:
        proxy = WanProxy((host, port), rtt_ms, bandwidth, faults).start()
        started.append(proxy)
        return proxy

    try:
        yield start
    finally:
        for proxy in started:
            proxy.stop()


async def _read(reader: asyncio.StreamReader) -> bytes:
    """The next chunk from one side, or b"" once it closed or reset."""
    try:
        return await reader.read(_READ)
    except ConnectionError:
        return b""
