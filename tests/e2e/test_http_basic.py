"""End-to-end tests of the http service's basic endpoints, with curl as a real peer and raw
sockets for exact framing and pipelining."""
import email.utils
import json
import shutil
import subprocess
import time

import pytest

from conftest import RawHTTP, build_request, metric

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def curl(*args, timeout=15):
    p = subprocess.run([CURL, "-sS", "--max-time", "10", *args], capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def curl_full(url, *args):
    """curl -i: returns (status, headers (lower-case names, list per name), body)."""
    rc, out, err = curl("-i", *args, url)
    assert rc == 0, f"curl {url} failed ({rc}): {err}"
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, headers, body


def url(weft, path):
    host, port = weft.addr("http")
    return f"http://{host}:{port}{path}"


@needs_curl
def test_get_root_with_curl(weft):
    status, h, body = curl_full(url(weft, "/"))
    assert status == 200
    assert body == b"Hello, World!"
    assert h["content-type"][0].split(";")[0].strip() == "text/plain"
    assert h["content-length"] == ["13"]
    assert "server" in h and h["server"][0]
    date = email.utils.parsedate_to_datetime(h["date"][0])
    assert h["date"][0].endswith(" GMT"), h["date"]
    assert abs(date.timestamp() - time.time()) < 5, f"Date {h['date'][0]} is not now"


@needs_curl
def test_head_root_has_no_body(weft):
    status, h, body = curl_full(url(weft, "/"), "-I")
    assert status == 200
    assert body == b""
    assert h.get("content-length") == ["13"], h
    # And on a raw socket: no body bytes follow the head, the connection stays usable.
    with RawHTTP(weft.addr("http")) as c:
        r = c.request("HEAD", "/")
        assert r.status == 200 and r.body == b""
        r = c.request("GET", "/")
        assert r.status == 200 and r.body == b"Hello, World!", (
            f"after HEAD, the next response was {r}: HEAD sent a body?")


@needs_curl
def test_keep_alive_reuses_connection(weft):
    before = metric(weft.metrics(), "weft_connections_total", service="http")
    rc, out, err = curl("-v", url(weft, "/"), url(weft, "/"))
    assert rc == 0, err
    assert out == b"Hello, World!Hello, World!"
    assert "Re-using existing connection" in err, f"curl did not reuse the connection:\n{err}"
    after = metric(weft.metrics(), "weft_connections_total", service="http")
    assert after - before == 1, f"{after - before} connections for two keep-alive requests"


@needs_curl
def test_reverse_unicode(weft):
    body = json.dumps({"a": "héllo", "b": "😀x", "c": ""}, ensure_ascii=False)
    status, h, out = curl_full(url(weft, "/reverse"), "-X", "POST", "-H",
                               "Content-Type: application/json", "--data-binary", body)
    assert status == 200, out
    assert h["content-type"][0].startswith("application/json")
    assert json.loads(out) == {"data": ["olléh", "x😀", ""]}


def test_reverse_keeps_object_order(weft):
    doc = {"z": "abc", "a": "xy", "m": "ñ"}
    with RawHTTP(weft.addr("http")) as c:
        r = c.request("POST", "/reverse", json.dumps(doc),
                      {"Content-Type": "application/json"})
    assert r.status == 200, r
    assert json.loads(r.body) == {"data": ["cba", "yx", "ñ"]}


@pytest.mark.parametrize("body", [b'{"a": "x"', b"not json", b"", b'["a","b"]',
                                  b'{"a": 1}', b'{"a": "ok", "b": null}', b'{"a": ["x"]}',
                                  b'{"a": {"b": "c"}}'])
def test_reverse_bad_input_400(weft, body):
    with RawHTTP(weft.addr("http")) as c:
        r = c.request("POST", "/reverse", body, {"Content-Type": "application/json"})
        assert r.status == 400, f"POST /reverse {body!r}: {r.status} {r.body!r}"
        assert r.header("content-type", "").startswith("application/json")
        err = json.loads(r.body)
        assert isinstance(err.get("error"), str) and err["error"], r.body
        # A 400 for a bad body does not break the connection.
        r = c.request("GET", "/")
        assert r.status == 200


@needs_curl
def test_echo_body_and_content_type(weft):
    payload = "body with ünïcode and \x01 bytes" * 100
    status, h, out = curl_full(url(weft, "/echo"), "-X", "POST", "-H",
                               "Content-Type: application/x-weft-test; charset=utf-8",
                               "--data-binary", payload)
    assert status == 200
    assert out == payload.encode()
    assert h["content-type"] == ["application/x-weft-test; charset=utf-8"]


def test_echo_binary_body(weft):
    body = bytes(range(256)) * 64
    with RawHTTP(weft.addr("http")) as c:
        r = c.request("POST", "/echo", body, {"Content-Type": "application/octet-stream"})
    assert r.status == 200
    assert r.body == body
    assert r.header("content-type") == "application/octet-stream"


def test_sleep_waits(weft):
    with RawHTTP(weft.addr("http")) as c:
        t = time.monotonic()
        r = c.request("GET", "/sleep?ms=100")
        dt = time.monotonic() - t
    assert r.status == 200
    assert dt >= 0.1, f"/sleep?ms=100 answered after {dt * 1000:.1f} ms"
    assert dt < 2, f"/sleep?ms=100 took {dt:.2f} s"


def test_sleep_does_not_block_the_loop(weft_factory):
    """With one worker, GET / answers at once while a /sleep is pending on another
    connection."""
    w = weft_factory("--workers", "1")
    with RawHTTP(w.addr("http")) as sleeper, RawHTTP(w.addr("http")) as other:
        sleeper.send(build_request("GET", "/sleep?ms=1000"))
        time.sleep(0.05)
        t = time.monotonic()
        for _ in range(5):
            assert other.request("GET", "/").status == 200
        assert time.monotonic() - t < 0.5
        assert sleeper.read_response(timeout=3).status == 200


@pytest.mark.parametrize("q", ["ms=abc", "ms=-1", "ms=60001", "", "ms=", "ms=1.5"])
def test_sleep_bad_ms_400(weft, q):
    with RawHTTP(weft.addr("http")) as c:
        r = c.request("GET", "/sleep?" + q if q else "/sleep")
    assert r.status == 400, f"/sleep?{q}: {r.status} {r.body!r}"
    assert "error" in json.loads(r.body)


def test_block(weft):
    with RawHTTP(weft.addr("http")) as c:
        t = time.monotonic()
        r = c.request("GET", "/block?ms=100")
        dt = time.monotonic() - t
    assert r.status == 200
    assert dt >= 0.1, f"/block?ms=100 answered after {dt * 1000:.1f} ms"
    assert dt < 2


def test_block_runs_off_the_event_loop(weft_factory):
    """With one event-loop worker, /block?ms=800 must not stall other requests."""
    w = weft_factory("--workers", "1")
    with RawHTTP(w.addr("http")) as blocker, RawHTTP(w.addr("http")) as other:
        blocker.send(build_request("GET", "/block?ms=800"))
        time.sleep(0.1)
        t = time.monotonic()
        r = other.request("GET", "/", timeout=3)
        dt = time.monotonic() - t
        assert r.status == 200
        assert dt < 0.4, f"GET / took {dt:.2f} s while /block ran: the loop was blocked"
        assert blocker.read_response(timeout=3).status == 200


def test_unknown_path_404(weft):
    with RawHTTP(weft.addr("http")) as c:
        r = c.request("GET", "/no/such/thing")
        assert r.status == 404
        assert "error" in json.loads(r.body)
        assert c.request("GET", "/").status == 200


@pytest.mark.parametrize("method,path,allowed", [
    ("POST", "/", "GET"), ("DELETE", "/", "GET"), ("GET", "/reverse", "POST"),
    ("GET", "/echo", "POST"), ("POST", "/sleep?ms=1", "GET"), ("PUT", "/block?ms=1", "GET"),
])
def test_wrong_method_405_with_allow(weft, method, path, allowed):
    with RawHTTP(weft.addr("http")) as c:
        r = c.request(method, path, b"x" if method in ("POST", "PUT") else b"")
        assert r.status == 405, f"{method} {path}: {r.status}"
        allow = [m.strip() for m in (r.header("allow") or "").split(",")]
        assert allowed in allow, f"{method} {path}: Allow {r.header('allow')!r}"
        assert method not in allow
        assert c.request("GET", "/").status == 200


def test_pipelined_100_gets(weft):
    with RawHTTP(weft.addr("http")) as c:
        c.send(build_request("GET", "/") * 100)
        for i in range(100):
            r = c.read_response(timeout=5)
            assert r.status == 200, f"response {i}: {r}"
            assert r.body == b"Hello, World!", f"response {i}: {r.body!r}"
        # Nothing extra.
        c.sock.settimeout(0.2)
        try:
            extra = c.sock.recv(100)
        except OSError:
            extra = b""
        assert bytes(c.buf) + extra == b"", f"bytes after 100 responses: {extra!r}"


def test_pipelined_mixed_in_order(weft):
    """GET / and POST /echo interleaved in one send: answers come back in request order."""
    reqs = b""
    for i in range(60):
        if i % 3 == 0:
            reqs += build_request("GET", "/")
        elif i % 3 == 1:
            reqs += build_request("POST", "/echo", f"body-{i}", {"Content-Type": "text/x-n"})
        else:
            reqs += build_request("GET", f"/missing-{i}")
    with RawHTTP(weft.addr("http")) as c:
        c.send(reqs)
        for i in range(60):
            r = c.read_response(timeout=5)
            if i % 3 == 0:
                assert (r.status, r.body) == (200, b"Hello, World!"), f"#{i}: {r}"
            elif i % 3 == 1:
                assert (r.status, r.body) == (200, f"body-{i}".encode()), f"#{i}: {r}"
            else:
                assert r.status == 404, f"#{i}: {r}"


def test_pipelined_sleep_then_get_in_order(weft):
    with RawHTTP(weft.addr("http")) as c:
        t = time.monotonic()
        c.send(build_request("GET", "/sleep?ms=200") + build_request("GET", "/"))
        r1 = c.read_response(timeout=5)
        t1 = time.monotonic() - t
        r2 = c.read_response(timeout=5)
    assert r1.status == 200 and r1.body != b"Hello, World!", f"first answer: {r1}"
    assert t1 >= 0.2, f"the /sleep answer came after {t1 * 1000:.0f} ms"
    assert r2.status == 200 and r2.body == b"Hello, World!", f"second answer: {r2}"


def test_http10_closes(weft):
    with RawHTTP(weft.addr("http")) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"Hello, World!"
        c.sock.settimeout(2)
        assert c.sock.recv(10) == b"", "HTTP/1.0 without keep-alive was not closed"
