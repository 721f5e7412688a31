"""The far-network proxy of the tests and the benchmark (tests/services/wan.py): it counts
every HTTP request, keeps connections apart, delays without piling delays up, and breaks
exactly the requests it is told to."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.services.wan import Fault, WanProxy, _Link


class _Origin(ThreadingHTTPServer):
    """A keep-alive HTTP/1.1 server that records what reached it: GET /N answers N bytes,
    PUT answers the length of the body it read."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Origin

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        with self.server.lock:
            self.server.seen.append(("GET", self.path, 0))
        self._answer(b"x" * int(self.path.strip("/") or 0))

    def do_PUT(self) -> None:  # noqa: N802
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if not size:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.seen.append(("PUT", self.path, len(body)))
        self._answer(str(len(body)).encode())


@pytest.fixture
def origin() -> Iterator[_Origin]:
    server = _Origin()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _port(origin: _Origin) -> int:
    return int(origin.server_address[1])


def test_counts_every_request_of_a_kept_alive_connection(
        origin: _Origin, wan_proxy: Callable[..., WanProxy]) -> None:
    proxy = wan_proxy("127.0.0.1", _port(origin), rtt_ms=10)
    with requests.Session() as s:
        assert [len(s.get(f"{proxy.url}/{n}").content) for n in (0, 5, 200_000)] == [
            0, 5, 200_000]
        assert s.put(f"{proxy.url}/a", data=b"y" * 300_000).text == "300000"
        # A body of unknown length goes chunked: the proxy must find where it ends.
        assert s.put(f"{proxy.url}/b", data=iter([b"ab", b"c" * 70_000, b"d"])).text == "70003"
        assert s.get(f"{proxy.url}/3").content == b"xxx"
    assert [(r.method, r.target, r.connection, r.fault) for r in proxy.requests] == [
        ("GET", "/0", 1, None), ("GET", "/5", 1, None), ("GET", "/200000", 1, None),
        ("PUT", "/a", 1, None), ("PUT", "/b", 1, None), ("GET", "/3", 1, None)]
    assert proxy.connections == 1
    assert origin.seen == [("GET", "/0", 0), ("GET", "/5", 0), ("GET", "/200000", 0),
                           ("PUT", "/a", 300_000), ("PUT", "/b", 70_003), ("GET", "/3", 0)]
    assert (proxy.count("GET"), proxy.count("PUT"), proxy.count(path="/a")) == (4, 2, 1)


def test_connections_are_counted_apart(origin: _Origin,
                                       wan_proxy: Callable[..., WanProxy]) -> None:
    proxy = wan_proxy("127.0.0.1", _port(origin))
    for n in range(3):
        with requests.Session() as s:
            s.get(f"{proxy.url}/{n}")
            s.get(f"{proxy.url}/{n}")
    assert proxy.connections == 3
    assert [r.connection for r in proxy.requests] == [1, 1, 2, 2, 3, 3]
    proxy.reset_counts()
    assert (proxy.connections, proxy.requests) == (0, [])


def test_each_round_trip_pays_the_latency(origin: _Origin,
                                          wan_proxy: Callable[..., WanProxy]) -> None:
    # A lower bound only: a slow machine can only make it take longer.
    proxy = wan_proxy("127.0.0.1", _port(origin), rtt_ms=100)
    with requests.Session() as s:
        start = time.monotonic()
        for _ in range(4):
            s.get(f"{proxy.url}/10")
        elapsed = time.monotonic() - start
    # Four requests in turn on one connection: at least four round trips (plus the
    # connection's own set-up, which the proxy answers locally).
    assert elapsed >= 4 * 0.100


def test_latency_is_a_pipe_and_bandwidth_a_shared_link() -> None:
    # Chunks handed over together arrive together, half a round trip later: delays do not
    # pile up along a stream.
    link = _Link(delay=0.010, bandwidth=None)
    assert [link.due(5.0, 65536) for _ in range(10)] == [5.010] * 10
    assert link.due(6.0, 1) == 6.010
    # A capped link carries one chunk after the other, whichever connection sends it.
    capped = _Link(delay=0.010, bandwidth=1000.0)
    assert capped.due(0.0, 500) == pytest.approx(0.510)
    assert capped.due(0.0, 500) == pytest.approx(1.010)
    assert capped.due(5.0, 1000) == pytest.approx(6.010)  # idle link: no backlog


@pytest.mark.parametrize("kind", ["503", "slowdown"])
def test_answers_the_nth_request_itself_and_keeps_the_connection(
        kind: str, origin: _Origin, wan_proxy: Callable[..., WanProxy]) -> None:
    proxy = wan_proxy("127.0.0.1", _port(origin), rtt_ms=2,
                      faults=[Fault(kind, nth=[2], methods=["PUT"], retry_after=1)])
    with requests.Session() as s:
        first = s.put(f"{proxy.url}/one", data=b"1" * 10)
        refused = s.put(f"{proxy.url}/two", data=b"2" * 100_000)
        third = s.put(f"{proxy.url}/three", data=b"3" * 10)
        get = s.get(f"{proxy.url}/4")
    assert (first.status_code, refused.status_code, third.status_code, get.status_code) == (
        200, 503, 200, 200)
    assert refused.headers["Retry-After"] == "1"
    assert ("<Code>SlowDown</Code>" in refused.text) == (kind == "slowdown")
    # Never forwarded, and its body did not leak into the next request.
    assert origin.seen == [("PUT", "/one", 10), ("PUT", "/three", 10), ("GET", "/4", 0)]
    assert [r.fault for r in proxy.requests] == [None, kind, None, None]
    assert proxy.connections == 1


def test_resets_before_forwarding(origin: _Origin, wan_proxy: Callable[..., WanProxy]) -> None:
    proxy = wan_proxy("127.0.0.1", _port(origin), faults=[Fault("reset", nth=[1])])
    with requests.Session() as s, pytest.raises(requests.ConnectionError) as broken:
        s.put(f"{proxy.url}/lost", data=b"z" * 1000)
    assert "reset" in str(broken.value).lower() or "aborted" in str(broken.value).lower()
    assert origin.seen == []
    assert requests.get(f"{proxy.url}/2").content == b"xx"
    assert proxy.count(fault="reset") == 1 and proxy.count(fault=False) == 1


def test_resets_after_forwarding_part_of_the_answer(
        origin: _Origin, wan_proxy: Callable[..., WanProxy]) -> None:
    proxy = wan_proxy("127.0.0.1", _port(origin),
                      faults=[Fault("reset-after", nth=[1], partial=5)])
    with requests.Session() as s, pytest.raises(requests.ConnectionError):
        s.put(f"{proxy.url}/done", data=b"z" * 1000)
    # The request did its work: only its answer was lost.
    assert origin.seen == [("PUT", "/done", 1000)]
    assert proxy.count(fault="reset-after") == 1


def test_a_fraction_of_requests_seeded(origin: _Origin,
                                       wan_proxy: Callable[..., WanProxy]) -> None:
    def run(seed: int) -> list[int]:
        proxy = wan_proxy("127.0.0.1", _port(origin),
                          faults=[Fault("503", fraction=0.3, seed=seed)])
        with requests.Session() as s:
            codes = [s.get(f"{proxy.url}/1").status_code for _ in range(40)]
        assert codes.count(503) == proxy.count(fault="503") == proxy.faults[0].injected
        return [n for n, code in enumerate(codes) if code == 503]

    first = run(7)
    assert first == run(7)
    assert 0 < len(first) < 40
    assert first != run(8)


def test_a_limit_bounds_the_faults(origin: _Origin,
                                   wan_proxy: Callable[..., WanProxy]) -> None:
    proxy = wan_proxy("127.0.0.1", _port(origin), faults=[Fault("503", fraction=1.0, limit=2)])
    codes = [requests.get(f"{proxy.url}/1").status_code for _ in range(4)]
    assert codes == [503, 503, 200, 200]


def test_refuses_a_faraway_upstream() -> None:
    with pytest.raises(ValueError, match="loopback"):
        WanProxy(("192.0.2.1", 80))
