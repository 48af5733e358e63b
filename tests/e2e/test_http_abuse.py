"""End-to-end tests of how the http service refuses bad and hostile clients (SPEC, "HTTP
service"): malformed or ambiguous requests are answered with an error and closed, slow clients
get 408 without hurting anyone else, memory stays bounded, idle connections time out, and
--max-connections answers 503."""
import json
import os
import selectors
import socket
import threading
import time

import pytest

from conftest import RawHTTP, build_request, connect, metric, wait_closed

HELLO = b"Hello, World!"
MIB = 1 << 20


def expect_closed(c, timeout=3.0, what="the connection"):
    how, extra = wait_closed(c.sock, timeout)
    extra = bytes(c.buf) + extra
    c.buf.clear()
    assert how in ("eof", "reset"), f"{what} was still open {timeout}s after the response"
    assert extra == b"", f"{what}: unexpected bytes after the response: {extra[:300]!r}"


def assert_serving(w):
    """A new connection still gets 200 for GET /."""
    with RawHTTP(w.addr("http")) as c:
        r = c.request("GET", "/", timeout=5)
        assert r.status == 200 and r.body == HELLO, f"after the refusal, GET / got {r}"


# ---------------------------------------------------------------------------------------------
# refusals

H = b"Host: weft.test\r\n"
REFUSALS = {
    "cl-and-te": (b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "te-and-cl": (b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
                  b"Content-Length: 5\r\n\r\n0\r\n\r\n", 400),
    "two-content-lengths": (b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n"
                            b"Content-Length: 6\r\n\r\nhello!", 400),
    "content-length-list": (b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5, 6\r\n\r\n"
                            b"hello!", 400),
    "content-length-negative": (b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
                                400),
    "content-length-not-a-number": (b"POST /echo HTTP/1.1\r\n" + H +
                                    b"Content-Length: 1e3\r\n\r\n", 400),
    "bad-chunk-size": (b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                       b"zz\r\nhello\r\n0\r\n\r\n", 400),
    "chunk-size-overflow": (b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                            b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400),
    "chunk-missing-crlf": (b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhelloXX0\r\n\r\n", 400),
    "control-char-in-value": (b"GET / HTTP/1.1\r\n" + H + b"X-Evil: a\x01b\r\n\r\n", 400),
    "nul-in-value": (b"GET / HTTP/1.1\r\n" + H + b"X-Evil: a\x00b\r\n\r\n", 400),
    "bare-cr-in-value": (b"GET / HTTP/1.1\r\n" + H + b"X-Evil: a\rb\r\n\r\n", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\n" + H + b"X-Folded: a\r\n b\r\n\r\n", 400),
    "obs-fold-tab": (b"GET / HTTP/1.1\r\n" + H + b"X-Folded: a\r\n\tb\r\n\r\n", 400),
    "space-before-colon": (b"GET / HTTP/1.1\r\n" + H + b"X-Name : v\r\n\r\n", 400),
    "missing-host-1.1": (b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
    "two-hosts": (b"GET / HTTP/1.1\r\n" + H + b"Host: other.test\r\n\r\n", 400),
    "bare-lf-request-line": (b"GET / HTTP/1.1\n" + H + b"\r\n", 400),
    "bare-lf-everywhere": (b"GET / HTTP/1.1\nHost: weft.test\n\n", 400),
    "garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400),
    "words": (b"HELLO THERE\r\n\r\n", 400),
    "no-version": (b"GET /\r\n" + H + b"\r\n", 400),
    "two-spaces": (b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "trailer-control-char": (b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                             b"1\r\na\r\n0\r\nX-T: a\x01b\r\n\r\n", 400),
    "trailer-obs-fold": (b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                         b"1\r\na\r\n0\r\nX-T: a\r\n b\r\n\r\n", 400),
    "chunk-size-negative": (b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                            b"-5\r\nhello\r\n0\r\n\r\n", 400),
    "chunk-size-0x": (b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                      b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    "te-gzip": (b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    "te-gzip-chunked-ok-then-not-last": (b"POST /echo HTTP/1.1\r\n" + H +
                                         b"Transfer-Encoding: chunked, gzip\r\n\r\n", 501),
    "http-2.0": (b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    "http-3.0": (b"GET / HTTP/3.0\r\n" + H + b"\r\n", 505),
}


@pytest.fixture(scope="module")
def shared_weft():
    """One weft for the refusal cases (each case checks it still serves afterwards)."""
    from conftest import Weft
    w = Weft().start()
    yield w
    problems = w.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refused_and_closed(shared_weft, name):
    w = shared_weft
    data, status = REFUSALS[name]
    with RawHTTP(w.addr("http")) as c:
        # A valid request pipelined behind the bad one must not be answered.
        c.send(data + build_request("GET", "/"))
        r = c.read_response(timeout=5)
        assert r.status == status, f"{name}: sent {data!r}, got {r} (expected {status})"
        assert (r.header("connection") or "").lower() == "close", \
            f"{name}: refusal without Connection: close: {r.headers}"
        expect_closed(c, what=f"{name}: after {status}, the connection")
    assert w.alive(), "weft died"
    assert_serving(w)


def test_refusals_are_counted(weft):
    before = weft.metrics()
    b400 = metric(before, "weft_http_requests_total", 0, service="http", code="400")
    for name in ("cl-and-te", "obs-fold", "missing-host-1.1"):
        with RawHTTP(weft.addr("http")) as c:
            c.send(REFUSALS[name][0])
            assert c.read_response(timeout=5).status == 400
            expect_closed(c)
    deadline = time.monotonic() + 3
    while True:
        a400 = metric(weft.metrics(), "weft_http_requests_total", 0, service="http", code="400")
        if a400 - b400 >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert a400 - b400 == 3, f"3 refusals counted as {a400 - b400} 400s"


def test_http10_without_host_is_fine_but_11_is_not(weft):
    with RawHTTP(weft.addr("http")) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        assert c.read_response(timeout=5).status == 200
    with RawHTTP(weft.addr("http")) as c:
        c.send(b"GET / HTTP/1.1\r\n\r\n")
        assert c.read_response(timeout=5).status == 400
        expect_closed(c)


def test_refusal_after_good_requests_on_same_connection(weft):
    """A bad request behind good ones on a keep-alive connection: the good ones are answered,
    then the bad one gets 400 and the connection closes."""
    with RawHTTP(weft.addr("http")) as c:
        c.send(build_request("GET", "/") + build_request("POST", "/echo", body=b"ok") +
               REFUSALS["cl-and-te"][0])
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == HELLO
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"ok"
        r = c.read_response(timeout=5)
        assert r.status == 400, r
        expect_closed(c)


# ---------------------------------------------------------------------------------------------
# slowloris

def keepalive_client(addr, stop, counts, lock):
    ok = err = 0
    errors = []
    try:
        c = RawHTTP(addr, timeout=5)
    except OSError as e:
        with lock:
            counts["err"] += 1
            counts["errors"].append(repr(e))
        return
    try:
        while not stop.is_set():
            try:
                r = c.request("GET", "/", timeout=5)
            except Exception as e:  # noqa: BLE001 - every failure counts
                err += 1
                errors.append(repr(e))
                break
            if r.status == 200 and r.body == HELLO:
                ok += 1
            else:
                err += 1
                errors.append(repr(r))
                break
    finally:
        c.close()
        with lock:
            counts["ok"] += ok
            counts["err"] += err
            counts["errors"] += errors[:3]


def slow_client(addr, result, byte_interval=0.3, give_up=8.0):
    """Sends a request line, then one header byte every byte_interval, never finishing. Records
    when the first answer byte came, the answer and when the connection closed."""
    s = connect(addr, timeout=5)
    t0 = time.monotonic()
    result["t0"] = t0
    data = bytearray()
    sent = 0
    closed_at = None
    first_at = None
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: weft.test\r\n")
        header = b"X-Slowloris: " + b"s" * 1000
        next_send = time.monotonic()
        while time.monotonic() - t0 < give_up:
            now = time.monotonic()
            if now >= next_send and closed_at is None and first_at is None:
                try:
                    s.send(header[sent:sent + 1])
                    sent += 1
                except OSError:
                    pass
                next_send = now + byte_interval
            s.settimeout(max(0.01, next_send - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ConnectionAbortedError):
                closed_at = time.monotonic()
                break
            if not chunk:
                closed_at = time.monotonic()
                break
            if first_at is None:
                first_at = time.monotonic()
            data += chunk
    finally:
        s.close()
    result.update(data=bytes(data), first=None if first_at is None else first_at - t0,
                  closed=None if closed_at is None else closed_at - t0, sent=sent)


def test_slowloris_gets_408_while_others_are_served(weft_factory):
    w = weft_factory("--http-head-timeout", "2s")
    addr = w.addr("http")
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"ok": 0, "err": 0, "errors": []}
    clients = [threading.Thread(target=keepalive_client, args=(addr, stop, counts, lock),
                                daemon=True) for _ in range(100)]
    for t in clients:
        t.start()
    result = {}
    t_start = time.monotonic()
    slow = threading.Thread(target=slow_client, args=(addr, result), daemon=True)
    slow.start()
    slow.join(12)
    elapsed = time.monotonic() - t_start
    stop.set()
    for t in clients:
        t.join(10)
    assert not slow.is_alive() and "data" in result, "the slow client did not finish"
    data = result["data"]
    assert data.startswith(b"HTTP/1.1 408 "), \
        f"slowloris client got {data[:200]!r} (first byte at {result['first']}s)"
    assert result["first"] is not None and 1.5 <= result["first"] <= 4.0, \
        f"408 after {result['first']}s with --http-head-timeout 2s"
    assert result["closed"] is not None and result["closed"] - result["first"] < 1.0, \
        f"not closed after the 408 (closed: {result['closed']})"
    print("slowloris", result, counts["ok"], elapsed)
    assert counts["err"] == 0, f"{counts['err']} keep-alive requests failed: {counts['errors']}"
    assert counts["ok"] > 500, \
        f"only {counts['ok']} requests by 100 clients in {elapsed:.1f}s next to a slowloris"
    assert_serving(w)


def test_1000_half_heads_get_408_and_memory_stays_bounded(weft_factory):
    w = weft_factory("--http-head-timeout", "1s")
    addr = w.addr("http")
    assert_serving(w)
    rss0 = w.rss()
    n = 1000
    socks = []
    opened = {}
    sel = selectors.DefaultSelector()
    half = b"GET /sleep?ms=1 HTTP/1.1\r\nHost: weft.test\r\nX-Half: "
    try:
        t_first = time.monotonic()
        for i in range(n):
            s = socket.create_connection(addr, timeout=5)
            s.sendall(half)
            s.setblocking(False)
            opened[s.fileno()] = time.monotonic()
            socks.append(s)
            sel.register(s, selectors.EVENT_READ, i)
        t_last = time.monotonic()
        assert t_last - t_first < 0.9, \
            f"opening {n} connections took {t_last - t_first:.2f}s: too slow for a 1s timeout"
        rss_peak = w.rss()
        data = [bytearray() for _ in range(n)]
        closed = [None] * n
        first = [None] * n
        left = n
        deadline = time.monotonic() + 8
        while left and time.monotonic() < deadline:
            for key, _ in sel.select(0.2):
                i = key.data
                s = socks[i]
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                except (ConnectionResetError, ConnectionAbortedError):
                    chunk = b""
                now = time.monotonic()
                if chunk:
                    if first[i] is None:
                        first[i] = now - opened[s.fileno()]
                    data[i] += chunk
                else:
                    closed[i] = now
                    sel.unregister(s)
                    left -= 1
            rss_peak = max(rss_peak, w.rss())
    finally:
        sel.close()
        for s in socks:
            s.close()
    not_closed = [i for i in range(n) if closed[i] is None]
    assert not not_closed, f"{len(not_closed)} of {n} half-head connections were not closed " \
                           f"within 8 s"
    bad = [(i, bytes(d[:60])) for i, d in enumerate(data) if not d.startswith(b"HTTP/1.1 408 ")]
    assert not bad, f"{len(bad)} of {n} did not get 408, e.g. {bad[:3]}"
    early = [f for f in first if f < 0.8]
    late = [f for f in first if f > 4.0]
    assert not early, f"{len(early)} got 408 before the 1s head timeout: {sorted(early)[:5]}"
    assert not late, f"{len(late)} got 408 more than 4 s after connecting: {sorted(late)[-5:]}"
    growth = rss_peak - rss0
    print("rss", rss0, rss_peak, growth)
    assert growth < 64 * MIB, f"RSS grew by {growth / MIB:.1f} MiB with {n} half heads"
    assert_serving(w)
    # Everything was freed: active connections back to 0.
    deadline = time.monotonic() + 3
    while True:
        active = metric(w.metrics(), "weft_connections_active", service="http")
        if active == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert active == 0, f"weft_connections_active{{service=http}} is {active} after all closed"


def test_10mib_without_newline_is_refused_without_buffering(weft_factory):
    w = weft_factory()
    assert_serving(w)
    rss0 = w.rss()
    s = connect(w.addr("http"), timeout=10)
    state = {"sent": 0, "error": None}
    total = 10 * MIB

    def send_garbage():
        block = b"A" * 65536
        try:
            while state["sent"] < total:
                state["sent"] += s.send(block)
        except OSError as e:
            state["error"] = e

    t = threading.Thread(target=send_garbage, daemon=True)
    t.start()
    how, data = wait_closed(s, timeout=15)
    t.join(15)
    rss1 = w.rss()
    print("garbage", rss0, rss1, state)
    s.close()
    assert how in ("eof", "reset"), f"10 MiB without a newline: still open ({how})"
    status = data[9:12]
    assert data.startswith(b"HTTP/1.1 ") and status in (b"400", b"414", b"431"), \
        f"10 MiB without a newline: got {data[:200]!r} (sent {state['sent']} bytes)"
    assert rss1 - rss0 < 8 * MIB, \
        f"RSS grew by {(rss1 - rss0) / MIB:.1f} MiB reading a line without end"
    assert_serving(w)


def test_long_header_line_trickled_is_refused(weft_factory):
    """Garbage without a newline trickled after a valid request line: refused at the limit."""
    w = weft_factory()
    with RawHTTP(w.addr("http")) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weft.test\r\nX-Long: ")
        try:
            for _ in range(20):
                c.send(b"q" * 1024)
                time.sleep(0.005)
        except OSError:
            pass
        r = c.read_response(timeout=5)
        assert r.status == 431, r
        expect_closed(c)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_chunked_body_costs_like_content_length(weft_factory):
    """Reading a chunked body is linear: weft's CPU time for chunked uploads is of the order of
    the same uploads with Content-Length (no re-copying of the body on every read)."""
    w = weft_factory("--http-max-body", "4M", "--workers", "1")
    size = 4 * MIB
    payload = b"z" * size
    framed = bytearray()
    for i in range(0, size, 65536):
        framed += b"10000\r\n" + payload[i:i + 65536] + b"\r\n"
    framed += b"0\r\n\r\n"
    cases = {
        "content-length": b"POST /echo HTTP/1.1\r\nHost: weft.test\r\nContent-Length: " +
                          str(size).encode() + b"\r\n\r\n" + payload,
        "chunked": b"POST /echo HTTP/1.1\r\nHost: weft.test\r\nTransfer-Encoding: chunked\r\n"
                   b"\r\n" + bytes(framed),
    }
    cost = {}
    for name, wire in cases.items():
        c0 = cpu_seconds(w.pid)
        for _ in range(3):
            with RawHTTP(w.addr("http"), timeout=30) as c:
                t = threading.Thread(target=c.sock.sendall, args=(wire,), daemon=True)
                t.start()
                r = c.read_response(timeout=30)
                t.join(10)
                assert r.status == 200 and len(r.body) == size, (name, r.status)
        cost[name] = cpu_seconds(w.pid) - c0
    # Re-copying the body on every read cost 7 s here; a linear decoder costs a few times the
    # Content-Length path (more under the sanitizers, where 4.7x was seen once).
    assert cost["chunked"] < 8 * cost["content-length"] + 0.5, \
        f"3 uploads of 4 MiB cost weft {cost['chunked']:.2f}s of CPU chunked (64 KiB chunks) " \
        f"and {cost['content-length']:.2f}s with Content-Length"


# ---------------------------------------------------------------------------------------------
# timeouts and connection limit

@pytest.mark.parametrize("defer,lo,hi", [(None, 1.7, 4.0), ("0", 0.8, 1.6)])
def test_silent_connection_closed_after_defer_and_head_timeout(weft_factory, defer, lo, hi):
    """A client that connects and sends nothing: by default (--defer-accept 1s) the kernel keeps
    it from weft for a second, then weft's head timeout runs (closed quietly, no 408: nothing
    was asked); with --defer-accept 0 the head timeout starts at the connect. Never a hang."""
    flags = ["--http-head-timeout", "1s"] + (["--defer-accept", defer] if defer else [])
    w = weft_factory(*flags)
    with connect(w.addr("http")) as s:
        t = time.monotonic()
        how, extra = wait_closed(s, timeout=8)
        took = time.monotonic() - t
    assert how in ("eof", "reset"), "a silent connection was still open after 8 s"
    assert extra == b"", f"bytes to a silent connection: {extra[:200]!r}"
    assert lo <= took <= hi, f"silent connection closed after {took:.2f}s ({flags})"
    # Meanwhile a client that speaks at once is answered at once.
    with RawHTTP(w.addr("http")) as c:
        t = time.monotonic()
        assert c.request("GET", "/").status == 200
        assert time.monotonic() - t < 0.5


def test_keepalive_timeout_closes_idle_connection(weft_factory):
    w = weft_factory("--http-keepalive-timeout", "1s")
    with RawHTTP(w.addr("http")) as c:
        assert c.request("GET", "/").status == 200
        time.sleep(0.6)
        # Still open after 0.6 s; a request restarts the idle clock.
        r = c.request("GET", "/")
        assert r.status == 200 and r.body == HELLO
        t = time.monotonic()
        how, extra = wait_closed(c.sock, timeout=5)
        idle = time.monotonic() - t
        assert how in ("eof", "reset"), "idle keep-alive connection not closed within 5 s"
        assert extra == b"", f"bytes before the idle close: {extra[:200]!r}"
        assert 0.8 <= idle <= 2.5, f"idle connection closed after {idle:.2f}s (timeout 1s)"


def test_keepalive_timeout_does_not_cut_a_slow_answer(weft_factory):
    """The keep-alive clock does not run while a request is being answered."""
    w = weft_factory("--http-keepalive-timeout", "1s")
    with RawHTTP(w.addr("http")) as c:
        r = c.request("GET", "/sleep?ms=1500", timeout=5)
        assert r.status == 200, r
        r = c.request("GET", "/")
        assert r.status == 200


def test_head_timeout_after_keepalive_request(weft_factory):
    """After a first request, a second head that never completes gets 408 after the head
    timeout (not the long keep-alive timeout)."""
    w = weft_factory("--http-head-timeout", "1s", "--http-keepalive-timeout", "30s")
    with RawHTTP(w.addr("http")) as c:
        assert c.request("GET", "/").status == 200
        time.sleep(0.5)
        t = time.monotonic()
        c.send(b"GET / HTTP/1.1\r\nHost: weft.test\r\n")
        r = c.read_response(timeout=5)
        took = time.monotonic() - t
        assert r.status == 408, r
        assert 0.8 <= took <= 3.0, f"408 after {took:.2f}s with --http-head-timeout 1s"
        expect_closed(c)


def test_max_connections_503_json(weft_factory):
    w = weft_factory("--max-connections", "5")
    addr = w.addr("http")
    held = []
    try:
        for _ in range(5):
            c = RawHTTP(addr)
            held.append(c)
            assert c.request("GET", "/").status == 200
        c6 = RawHTTP(addr)
        try:
            r = c6.read_response(timeout=5)
            assert r.status == 503, r
            assert (r.header("content-type") or "").startswith("application/json"), r.headers
            body = json.loads(r.body)
            assert isinstance(body, dict) and "error" in body, body
            expect_closed(c6, what="the 503 connection")
        finally:
            c6.close()
        # The held connections still work.
        for c in held:
            assert c.request("GET", "/").status == 200
        # Closing one makes room for a new one.
        held.pop().close()
        deadline = time.monotonic() + 3
        while True:
            with RawHTTP(addr) as c:
                try:
                    r = c.request("GET", "/", timeout=3)
                except (EOFError, ConnectionError):
                    r = None
                if r is not None and r.status == 200 or time.monotonic() > deadline:
                    break
            time.sleep(0.05)
        assert r is not None and r.status == 200, f"after closing one of 5, a new one got {r}"
    finally:
        for c in held:
            c.close()
    m = w.metrics()
    rejected = metric(m, "weft_connections_rejected_total", 0, service="http",
                      reason="max_connections")
    if rejected == 0:
        rejected = sum(v for (name, labels), v in m.items()
                       if name == "weft_connections_rejected_total" and
                       dict(labels).get("service") == "http")
    assert rejected >= 1, "the 503 was not counted in weft_connections_rejected_total"
