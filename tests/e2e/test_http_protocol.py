"""End-to-end tests of the http service's protocol edges (SPEC, "HTTP service"): HTTP/1.0,
Connection: close, chunked request bodies, Expect: 100-continue, the head/target/body limits and
their flags, HEAD, Date/Server, heavy pipelining, byte-at-a-time requests and the access log.

Raw sockets everywhere exact bytes matter. The happy paths of the endpoints are in
test_http_basic.py and not repeated here."""
import os
import re
import socket
import tempfile
import threading
import time

import pytest

from conftest import RawHTTP, build_request, connect, wait_closed

MIB = 1 << 20
HELLO = b"Hello, World!"
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"(\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT")


# ---------------------------------------------------------------------------------------------
# helpers

def expect_closed(c, timeout=3.0, what="the connection"):
    """Asserts the server closes c (EOF or reset) within timeout with no further bytes."""
    how, extra = wait_closed(c.sock, timeout)
    extra = bytes(c.buf) + extra
    c.buf.clear()
    assert how in ("eof", "reset"), f"{what} was still open {timeout}s after the response"
    assert extra == b"", f"{what}: unexpected bytes after the response: {extra[:300]!r}"


def expect_open(c, wait=0.3):
    """Asserts nothing arrives and the connection is not closed within `wait` seconds."""
    c.sock.settimeout(wait)
    try:
        data = c.sock.recv(4096)
    except socket.timeout:
        return
    finally:
        c.sock.settimeout(c.timeout)
    if data == b"":
        raise AssertionError("the server closed a connection that should have stayed open")
    raise AssertionError(f"unexpected bytes: {data[:300]!r}")


def send_sliced(sock, data, size, delay):
    for i in range(0, len(data), size):
        sock.sendall(data[i:i + size])
        if delay:
            time.sleep(delay)


def head_of_size(total, path="/", extra_name="X-Pad"):
    """A GET head of exactly `total` bytes (CRLFCRLF included), padded with one header."""
    base = f"GET {path} HTTP/1.1\r\nHost: weft.test\r\n{extra_name}: ".encode()
    pad = total - len(base) - 4
    assert pad >= 1
    head = base + b"a" * pad + b"\r\n\r\n"
    assert len(head) == total
    return head


def head_with_many_headers(total, each=400):
    """A GET head over `total` bytes made of many headers of about `each` bytes (fewer than 64)."""
    lines = [b"GET / HTTP/1.1", b"Host: weft.test"]
    i = 0
    while sum(len(l) + 2 for l in lines) + 2 <= total:
        lines.append(f"X-H{i:02d}: ".encode() + b"v" * each)
        i += 1
    assert i < 64, "too many headers for this helper"
    return b"\r\n".join(lines) + b"\r\n\r\n"


def chunked(payload, sizes):
    """payload framed as chunks of the given sizes (cycled), then the last chunk."""
    out = bytearray()
    i = 0
    k = 0
    while i < len(payload):
        n = sizes[k % len(sizes)]
        k += 1
        part = payload[i:i + n]
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
        i += n
    out += b"0\r\n\r\n"
    return bytes(out)


def post_head(path, headers):
    lines = [f"POST {path} HTTP/1.1", "Host: weft.test"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def sender(sock, data):
    """Sends data from a thread, ignoring a reset (the server may refuse and close first)."""
    state = {"sent": 0, "error": None}

    def run():
        view = memoryview(data)
        try:
            while state["sent"] < len(data):
                state["sent"] += sock.send(view[state["sent"]:state["sent"] + 65536])
        except OSError as e:
            state["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, state


# ---------------------------------------------------------------------------------------------
# HTTP/1.0 and Connection: close

def test_http10_without_host_closes_after_response(weft):
    with RawHTTP(weft.addr("http")) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n")
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == HELLO, r
        assert (r.header("connection") or "close").lower() == "close", r.headers
        assert r.header("transfer-encoding") is None, "chunked response to an HTTP/1.0 client"
        expect_closed(c, what="HTTP/1.0 connection without keep-alive")


def test_http10_keep_alive(weft):
    with RawHTTP(weft.addr("http")) as c:
        for i in range(3):
            c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response(timeout=5)
            assert r.status == 200 and r.body == HELLO, r
            assert (r.header("connection") or "").lower() == "keep-alive", (
                f"request {i}: HTTP/1.0 keep-alive answered without Connection: keep-alive: "
                f"{r.headers}")
            assert r.header("content-length") == "13"
        expect_open(c)
        # A POST with a body on the same HTTP/1.0 keep-alive connection.
        c.send(b"POST /echo HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 5\r\n\r\nhello")
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"hello", r
        assert (r.header("connection") or "").lower() == "keep-alive", r.headers
        # The last request without keep-alive: answered, then closed.
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == HELLO, r
        expect_closed(c, what="HTTP/1.0 connection after a request without keep-alive")


def test_connection_close_stops_pipeline(weft):
    with RawHTTP(weft.addr("http")) as c:
        c.send(build_request("GET", "/", headers={"Connection": "close"}) +
               build_request("POST", "/echo", body=b"must not be answered") +
               build_request("GET", "/"))
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == HELLO, r
        assert (r.header("connection") or "").lower() == "close", r.headers
        expect_closed(c, what="after Connection: close, the connection")


def test_connection_close_after_keepalive_requests(weft):
    with RawHTTP(weft.addr("http")) as c:
        r = c.request("GET", "/")
        assert r.status == 200 and (r.header("connection") or "").lower() != "close", r.headers
        r = c.request("POST", "/echo", body=b"last", headers={"Connection": "close"})
        assert r.status == 200 and r.body == b"last", r
        assert (r.header("connection") or "").lower() == "close", r.headers
        expect_closed(c)


@pytest.mark.parametrize("method,body", [("GET", b""), ("POST", b"x" * 3000)])
def test_connection_close_ends_with_fin_not_reset(weft, method, body):
    """The client's last request: the whole response, then a clean end (EOF, never a reset),
    promptly, connection after connection (the close sends the held bytes with the FIN)."""
    path = "/" if method == "GET" else "/echo"
    want = HELLO if method == "GET" else body
    req = build_request(method, path, body=body, headers={"Connection": "close"})
    for i in range(50):
        with connect(weft.addr("http")) as s:
            s.sendall(req)
            how, data = wait_closed(s, timeout=3.0)
            assert how == "eof", f"connection {i}: {how} after {data[:200]!r}"
            head, _, got = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in head, head
            assert got == want, f"connection {i}: body {got[:100]!r}"


# ---------------------------------------------------------------------------------------------
# chunked request bodies

CHUNKED_BODY = (b"4;ext=1\r\nWiki\r\n"
                b"5\r\npedia\r\n"
                b"E;name=\"quoted value\";flag\r\n in\r\n\r\nchunks.\r\n"
                b"000A\r\n0123456789\r\n"
                b"1 ; spaced-ext\r\n!\r\n"
                b"0\r\nX-Trailer: yes\r\nOther-Trailer: 1\r\n\r\n")
CHUNKED_PAYLOAD = b"Wikipedia in\r\n\r\nchunks.0123456789!"


def test_chunked_body_with_extensions_and_trailers(weft):
    with RawHTTP(weft.addr("http")) as c:
        c.send(post_head("/echo", [("Transfer-Encoding", "chunked"),
                                   ("Content-Type", "text/x-chunks")]) + CHUNKED_BODY +
               build_request("GET", "/"))
        r = c.read_response(timeout=5)
        assert r.status == 200, r
        assert r.body == CHUNKED_PAYLOAD
        assert r.header("content-type") == "text/x-chunks"
        # The trailers were consumed: the pipelined request behind them is answered.
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == HELLO, f"request after the trailers: {r}"


def test_chunked_body_split_in_small_sends(weft):
    data = post_head("/echo", [("Transfer-Encoding", "chunked")]) + CHUNKED_BODY
    with RawHTTP(weft.addr("http")) as c:
        for size in (1, 3, 7):
            send_sliced(c.sock, data, size, 0.002 if size == 1 else 0.005)
            r = c.read_response(timeout=5)
            assert r.status == 200 and r.body == CHUNKED_PAYLOAD, f"sent {size} by {size}: {r}"
        # Many chunks with a pause between each.
        payload = os.urandom(3000)
        body = chunked(payload, [1, 17, 100, 255, 1024])
        c.send(post_head("/echo", [("Transfer-Encoding", "chunked")]))
        send_sliced(c.sock, body, 97, 0.01)
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == payload, "chunked body with pauses echoed wrong"


def test_chunked_empty_body(weft):
    with RawHTTP(weft.addr("http")) as c:
        c.send(post_head("/echo", [("Transfer-Encoding", "chunked")]) + b"0\r\n\r\n")
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"" and r.header("content-length") == "0", r


# ---------------------------------------------------------------------------------------------
# Expect: 100-continue

@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_expect_100_continue(weft, framing):
    body = b'{"a":"abc","b":"xyz"}'
    if framing == "content-length":
        hdrs = [("Content-Length", str(len(body)))]
        wire = body
    else:
        hdrs = [("Transfer-Encoding", "chunked")]
        wire = chunked(body, [5])
    with RawHTTP(weft.addr("http")) as c:
        c.send(post_head("/reverse", hdrs + [("Expect", "100-continue"),
                                             ("Content-Type", "application/json")]))
        r = c.read_response(timeout=3)
        assert r.status == 100, f"expected 100 Continue before the body, got {r}"
        assert r.version == "HTTP/1.1"
        c.send(wire)
        r = c.read_response(timeout=5)
        assert r.status == 200, r
        assert r.body == b'{"data":["cba","zyx"]}', r.body
        # Still keep-alive.
        r = c.request("GET", "/")
        assert r.status == 200 and r.body == HELLO


def test_expect_100_continue_too_large_gets_413_not_100(weft):
    with RawHTTP(weft.addr("http")) as c:
        c.send(post_head("/echo", [("Content-Length", str(MIB + 1)), ("Expect", "100-continue")]))
        r = c.read_response(timeout=3)
        assert r.status == 413, f"a body over the limit with Expect got {r} (expected 413)"
        expect_closed(c)


def test_expect_100_continue_ignored_on_http10(weft):
    """Expect counts on HTTP/1.1 only (RFC 9110 10.1.1): an HTTP/1.0 client gets no 100."""
    with RawHTTP(weft.addr("http")) as c:
        c.send(b"POST /echo HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        expect_open(c, 0.3)
        c.send(b"abc")
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"abc", r


def test_header_names_case_insensitive_and_absolute_form(weft):
    with RawHTTP(weft.addr("http")) as c:
        c.send(b"POST /echo HTTP/1.1\r\nhOsT: weft.test\r\ntRANSFER-eNCODING: ChUnKeD\r\n"
               b"content-TYPE: text/x-case\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"abc", r
        assert r.header("content-type") == "text/x-case"
        c.send(b"POST /echo HTTP/1.1\r\nHost: weft.test\r\nCONTENT-LENGTH:    2   \r\n\r\nxy")
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"xy", r
        c.send(b"POST /echo HTTP/1.1\r\nHost: weft.test\r\nContent-Length: 0\r\n\r\n")
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"", r
        # absolute-form (RFC 9112 3.2.2)
        host, port = weft.addr("http")
        c.send(f"GET http://{host}:{port}/ HTTP/1.1\r\nHost: weft.test\r\n\r\n".encode())
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == HELLO, r
        c.send(f"GET http://{host}:{port}/sleep?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        r = c.read_response(timeout=5)
        assert r.status == 200, r


# ---------------------------------------------------------------------------------------------
# body limit

def test_1mib_body_echoed_exactly(weft):
    payload = os.urandom(MIB)
    with RawHTTP(weft.addr("http"), timeout=20) as c:
        t, st = sender(c.sock, post_head("/echo", [("Content-Length", str(MIB))]) + payload)
        r = c.read_response(timeout=20)
        t.join(10)
        assert r.status == 200, r
        assert len(r.body) == MIB and r.body == payload, "1 MiB body not echoed exactly"
        # Chunked, in 64 KiB chunks, exactly 1 MiB of payload.
        t, st = sender(c.sock, post_head("/echo", [("Transfer-Encoding", "chunked")]) +
                       chunked(payload, [65536, 1, 4095]))
        r = c.read_response(timeout=20)
        t.join(10)
        assert r.status == 200, r
        assert r.body == payload, "1 MiB chunked body not echoed exactly"
        r = c.request("GET", "/")
        assert r.status == 200 and r.body == HELLO


def test_body_over_1mib_content_length_413(weft):
    with RawHTTP(weft.addr("http"), timeout=20) as c:
        t, st = sender(c.sock, post_head("/echo", [("Content-Length", str(MIB + 1))]) +
                       b"x" * (MIB + 1))
        r = c.read_response(timeout=10)
        assert r.status == 413, r
        assert (r.header("connection") or "").lower() == "close", r.headers
        expect_closed(c, timeout=10)
        t.join(10)
    s, _, b = get(weft, "/")
    assert s == 200


@pytest.mark.parametrize("sizes", [[65536], [MIB + 1]], ids=["64k-chunks", "one-chunk"])
def test_body_over_1mib_chunked_413(weft, sizes):
    with RawHTTP(weft.addr("http"), timeout=20) as c:
        t, st = sender(c.sock, post_head("/echo", [("Transfer-Encoding", "chunked")]) +
                       chunked(b"y" * (MIB + 1), sizes))
        r = c.read_response(timeout=10)
        assert r.status == 413, r
        expect_closed(c, timeout=10)
        t.join(10)
    s, _, b = get(weft, "/")
    assert s == 200


def get(weft, path, timeout=5):
    with RawHTTP(weft.addr("http")) as c:
        r = c.request("GET", path, timeout=timeout)
        return r.status, r, r.body


# ---------------------------------------------------------------------------------------------
# head and target limits

def test_head_exactly_8k_accepted_one_more_431(weft):
    with RawHTTP(weft.addr("http")) as c:
        c.send(head_of_size(8192))
        r = c.read_response(timeout=5)
        assert r.status == 200, f"a head of exactly 8192 bytes got {r}"
    with RawHTTP(weft.addr("http")) as c:
        c.send(head_of_size(8193))
        r = c.read_response(timeout=5)
        assert r.status == 431, f"a head of 8193 bytes got {r}"
        expect_closed(c)


def test_many_headers_over_8k_431(weft):
    head = head_with_many_headers(8192 + 2000)
    assert len(head) > 8192
    with RawHTTP(weft.addr("http")) as c:
        c.send(head)
        r = c.read_response(timeout=5)
        assert r.status == 431, r
        assert (r.header("connection") or "").lower() == "close", r.headers
        expect_closed(c)
    assert get(weft, "/")[0] == 200


def test_head_never_ending_431(weft):
    """Headers keep coming past 8 KiB without the blank line: 431 without waiting for the end."""
    with RawHTTP(weft.addr("http")) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weft.test\r\n")
        for i in range(40):
            try:
                c.send(f"X-Header-{i:03d}: ".encode() + b"z" * 300 + b"\r\n")
            except OSError:
                break
        r = c.read_response(timeout=5)
        assert r.status == 431, r
        expect_closed(c)


@pytest.mark.parametrize("target", ["/" + "a" * 9000, "/sleep?ms=1&pad=" + "b" * 9000])
def test_long_target_414(weft, target):
    with RawHTTP(weft.addr("http")) as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: weft.test\r\n\r\n".encode())
        r = c.read_response(timeout=5)
        assert r.status == 414, r
        expect_closed(c)
    assert get(weft, "/")[0] == 200


def test_target_under_limit_is_routed(weft):
    # A long target that fits is parsed and routed (404 here), not refused.
    s, r, _ = get(weft, "/" + "c" * 7000)
    assert s == 404, r


def test_max_head_flag_raises_limit(weft_factory):
    w = weft_factory("--http-max-head", "16K")
    with RawHTTP(w.addr("http")) as c:
        c.send(head_with_many_headers(12000))
        r = c.read_response(timeout=5)
        assert r.status == 200, f"12 KB head with --http-max-head 16K: {r}"
        c.send(head_of_size(16384))
        r = c.read_response(timeout=5)
        assert r.status == 200, f"16 KiB head with --http-max-head 16K: {r}"
        r = c.request("GET", "/" + "d" * 12000)
        assert r.status == 404, r
    with RawHTTP(w.addr("http")) as c:
        c.send(head_of_size(16385))
        r = c.read_response(timeout=5)
        assert r.status == 431, r
        expect_closed(c)
    with RawHTTP(w.addr("http")) as c:
        c.send(f"GET /{'e' * 17000} HTTP/1.1\r\nHost: weft.test\r\n\r\n".encode())
        r = c.read_response(timeout=5)
        assert r.status == 414, r


def test_max_head_flag_lowers_limit(weft_factory):
    w = weft_factory("--http-max-head", "2K")
    with RawHTTP(w.addr("http")) as c:
        c.send(head_of_size(2048))
        r = c.read_response(timeout=5)
        assert r.status == 200, r
    with RawHTTP(w.addr("http")) as c:
        c.send(head_of_size(3000))
        r = c.read_response(timeout=5)
        assert r.status == 431, f"a 3000-byte head with --http-max-head 2K: {r}"
        expect_closed(c)
    with RawHTTP(w.addr("http")) as c:
        c.send(f"GET /{'f' * 2500} HTTP/1.1\r\nHost: weft.test\r\n\r\n".encode())
        r = c.read_response(timeout=5)
        assert r.status == 414, r


def test_max_body_flag(weft_factory):
    w = weft_factory("--http-max-body", "1K")
    with RawHTTP(w.addr("http")) as c:
        r = c.request("POST", "/echo", body=b"k" * 1024)
        assert r.status == 200 and r.body == b"k" * 1024, r
        c.send(post_head("/echo", [("Transfer-Encoding", "chunked")]) +
               chunked(b"m" * 1024, [100]))
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"m" * 1024, r
        r = c.request("POST", "/echo", body=b"k" * 1025)
        assert r.status == 413, f"1025 bytes with --http-max-body 1K: {r}"
        expect_closed(c)
    with RawHTTP(w.addr("http")) as c:
        c.send(post_head("/echo", [("Transfer-Encoding", "chunked")]) +
               chunked(b"m" * 1025, [100]))
        r = c.read_response(timeout=5)
        assert r.status == 413, f"chunked 1025 bytes with --http-max-body 1K: {r}"
        expect_closed(c)
    w2 = weft_factory("--http-max-body", "4M")
    payload = os.urandom(3 * MIB)
    with RawHTTP(w2.addr("http"), timeout=20) as c:
        t, st = sender(c.sock, post_head("/echo", [("Content-Length", str(len(payload)))]) +
                       payload)
        r = c.read_response(timeout=20)
        t.join(10)
        assert r.status == 200 and r.body == payload, "3 MiB with --http-max-body 4M"


# ---------------------------------------------------------------------------------------------
# HEAD, Date, Server

@pytest.mark.parametrize("path,status", [("/sleep?ms=10", 200), ("/block?ms=5", 200),
                                         ("/health", 200), ("/no/such/path", 404),
                                         ("/echo", 405), ("/reverse", 405)])
def test_head_has_headers_but_no_body(weft, path, status):
    with RawHTTP(weft.addr("http")) as c:
        ref = c.request("GET", path) if status != 405 else None
        # HEAD, then a GET pipelined right behind it: a body after the HEAD head would be read
        # as the next status line.
        c.send(build_request("HEAD", path) + build_request("GET", "/"))
        r = c.read_response(head=True, timeout=5)
        assert r.status == status, r
        cl = r.header("content-length")
        assert cl is not None, f"HEAD {path}: no Content-Length: {r.headers}"
        if ref is not None:
            assert int(cl) == len(ref.body), f"HEAD {path} Content-Length {cl}, GET body " \
                                             f"{len(ref.body)}"
            assert r.header("content-type") == ref.header("content-type")
        r2 = c.read_response(timeout=5)
        assert r2.status == 200 and r2.body == HELLO, (
            f"after HEAD {path}, the next response was {r2}: the HEAD answer had a body?")


def check_date_server(r):
    date = r.header("date")
    assert date, f"no Date header: {r.headers}"
    m = IMF_FIXDATE.fullmatch(date)
    assert m, f"Date {date!r} is not IMF-fixdate"
    t = time.strptime(date, "%a, %d %b %Y %H:%M:%S GMT")
    import calendar
    ts = calendar.timegm(t)
    assert abs(ts - time.time()) < 5, f"Date {date} is not now"
    # The weekday matches the date.
    assert time.strftime("%a", time.gmtime(ts)) == m.group(1), f"Date {date}: wrong weekday"
    server = r.header("server")
    assert server and server.strip(), f"no Server header: {r.headers}"


def test_date_and_server_on_every_kind_of_answer(weft):
    with RawHTTP(weft.addr("http")) as c:
        for method, path, body, status in [("GET", "/", b"", 200), ("GET", "/missing", b"", 404),
                                           ("DELETE", "/", b"", 405),
                                           ("POST", "/reverse", b"[1]", 400),
                                           ("POST", "/echo", b"x", 200),
                                           ("GET", "/sleep?ms=1", b"", 200),
                                           ("GET", "/block?ms=1", b"", 200)]:
            r = c.request(method, path, body=body)
            assert r.status == status, (method, path, r)
            check_date_server(r)
        r = c.request("HEAD", "/")
        check_date_server(r)
    with RawHTTP(weft.addr("http")) as c:
        c.send(b"GET / HTTP/1.1\r\n\r\n")  # no Host: 400
        r = c.read_response(timeout=5)
        assert r.status == 400
        check_date_server(r)
    # The Date follows the clock across a second boundary.
    with RawHTTP(weft.addr("http")) as c:
        d1 = c.request("GET", "/").header("date")
        time.sleep(1.1)
        d2 = c.request("GET", "/").header("date")
        assert d1 != d2, f"Date did not change over 1.1 s: {d1}"


# ---------------------------------------------------------------------------------------------
# pipelining and fragmentation

def test_100_pipelined_mixed_requests_in_order(weft):
    with RawHTTP(weft.addr("http"), timeout=15) as c:
        sleep_body = c.request("GET", "/sleep?ms=0").body
        block_body = c.request("GET", "/block?ms=0").body
        wire = bytearray()
        expected = []
        for i in range(100):
            k = i % 4
            if k == 0:
                wire += build_request("GET", "/")
                expected.append(HELLO)
            elif k == 1:
                body = f"echo #{i} ".encode() * (1 + i % 7) + os.urandom(i)
                wire += build_request("POST", "/echo", body=body)
                expected.append(body)
            elif k == 2:
                wire += build_request("GET", "/sleep?ms=20")
                expected.append(sleep_body)
            else:
                wire += build_request("GET", "/block?ms=10")
                expected.append(block_body)
        t0 = time.monotonic()
        t, st = sender(c.sock, bytes(wire))
        for i, want in enumerate(expected):
            r = c.read_response(timeout=15)
            assert r.status == 200, f"response {i}: {r}"
            assert r.body == want, f"response {i} out of order or wrong: {r.body[:80]!r}, " \
                                   f"expected {want[:80]!r}"
        elapsed = time.monotonic() - t0
        t.join(5)
        assert st["error"] is None, st
        # 25 sleeps of 20 ms answered in order take at least 0.5 s.
        assert elapsed >= 0.45, f"100 pipelined requests with 25 x 20 ms sleeps took {elapsed:.3f}s"
        expect_open(c, 0.1)


def test_request_sent_one_byte_at_a_time(weft):
    with RawHTTP(weft.addr("http")) as c:
        send_sliced(c.sock, build_request("GET", "/"), 1, 0.001)
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == HELLO, r
        body = b'{"k":"one byte at a time"}'
        send_sliced(c.sock, build_request("POST", "/reverse", body=body), 1, 0.001)
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b'{"data":["emit a ta etyb eno"]}', r
        # Two pipelined requests, byte by byte, with the boundary inside a send.
        send_sliced(c.sock, build_request("POST", "/echo", body=b"ab") + build_request("GET", "/"),
                    1, 0)
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"ab", r
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == HELLO, r


# ---------------------------------------------------------------------------------------------
# access log

ACCESS_REQUESTS = [("GET", "/", 200), ("POST", "/echo", 200), ("GET", "/access-missing", 404),
                   ("DELETE", "/reverse", 405), ("GET", "/sleep?ms=5", 200)]


def do_access_requests(w):
    with RawHTTP(w.addr("http")) as c:
        for method, path, status in ACCESS_REQUESTS:
            r = c.request(method, path, body=b"log me" if method == "POST" else b"")
            assert r.status == status, (method, path, r)


def check_access_lines(lines):
    lines = [l for l in lines if l.strip()]
    assert len(lines) == len(ACCESS_REQUESTS), \
        f"{len(lines)} access-log lines for {len(ACCESS_REQUESTS)} requests: {lines}"
    for line, (method, path, status) in zip(lines, ACCESS_REQUESTS):
        assert re.search(rf"\b{method}\b.*{re.escape(path)}.*\b{status}\b", line), (
            f"access-log line {line!r} does not show {method} {path} {status}")


def poll_lines(get_lines, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        lines = get_lines()
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_access_log_file(weft_factory):
    with tempfile.TemporaryDirectory(prefix="weft-access-") as d:
        path = os.path.join(d, "access.log")
        w = weft_factory("--access-log", path)
        do_access_requests(w)

        def read():
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    return [l for l in f.read().splitlines() if l.strip()]
            except FileNotFoundError:
                return []
        lines = poll_lines(read, len(ACCESS_REQUESTS))
        check_access_lines(lines)
        time.sleep(0.3)
        assert len(read()) == len(ACCESS_REQUESTS), "extra access-log lines appeared"
        w.check_stop()


def test_access_log_stdout(weft_factory):
    w = weft_factory("--access-log", "-")
    do_access_requests(w)

    def read():
        return [l for l in list(w.stdout_lines) if not l.startswith("listening ") and l.strip()]
    lines = poll_lines(read, len(ACCESS_REQUESTS))
    check_access_lines(lines)
