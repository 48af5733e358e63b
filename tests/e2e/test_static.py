"""End-to-end tests of /static/ (--static DIR): bytes, media types, validators, conditional
requests, ranges, HEAD, a large file through sendfile, and no way out of the root (traversal
sent byte for byte on raw sockets, symlinks, FIFOs)."""
import email.utils
import hashlib
import os
import random
import re
import socket
import time

import pytest

from conftest import RawHTTP, build_request, connect, wait_closed

MiB = 1 << 20
SECRET = b"TOPSECRET-" + os.urandom(8).hex().encode() + b"\n"


@pytest.fixture
def tree(tmp_path):
    """tmp/www is the root; tmp/secret.txt sits next to it and must never be served."""
    root = tmp_path / "www"
    root.mkdir()
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (root / "hello.txt").write_bytes(b"Hello, static world!\n")
    (root / "index.html").write_bytes(b"<!doctype html><p>hi</p>\n")
    (root / "site.css").write_bytes(b"body{color:red}\n")
    (root / "app.js").write_bytes(b"console.log(1);\n")
    (root / "data.json").write_bytes(b'{"a":1}\n')
    (root / "img.PNG").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (root / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (root / "empty.txt").write_bytes(b"")
    (root / "a b.txt").write_bytes(b"space\n")
    (root / "%2e%2e").write_bytes(b"literal percent name\n")
    (root / "sub").mkdir()
    (root / "sub" / "deep.txt").write_bytes(b"deep\n")
    (root / "digits.txt").write_bytes(b"0123456789" * 10)
    return tmp_path


@pytest.fixture
def server(weft_factory, tree):
    w = weft_factory("--static", str(tree / "www"))
    return w


def get(w, path, headers=None, method="GET"):
    with RawHTTP(w.addr("http")) as c:
        return c.request(method, path, headers=headers)


def raw_exchange(addr, data, timeout=5.0):
    """Sends exact bytes on a new connection; returns everything received until the response is
    complete (by Content-Length) or the connection closes."""
    s = connect(addr, timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            head_end = buf.find(b"\r\n\r\n")
            if head_end >= 0:
                m = re.search(rb"\r\ncontent-length: *(\d+)", buf[:head_end], re.I)
                if m and len(buf) >= head_end + 4 + int(m.group(1)):
                    break
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
        return buf
    finally:
        s.close()


def status_of(raw):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", raw)
    assert m, f"no status line in {raw[:200]!r}"
    return int(m.group(1))


# ---------------------------------------------------------------------------------------------
# Content and headers

@pytest.mark.parametrize("name,ctype", [
    ("hello.txt", "text/plain; charset=utf-8"),
    ("index.html", "text/html; charset=utf-8"),
    ("site.css", "text/css; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("data.json", "application/json"),
    ("img.PNG", "image/png"),
    ("blob.bin", "application/octet-stream"),
    ("sub/deep.txt", "text/plain; charset=utf-8"),
])
def test_file_bytes_and_type(server, tree, name, ctype):
    r = get(server, "/static/" + name)
    assert r.status == 200, r
    assert r.body == (tree / "www" / name).read_bytes()
    assert r.header("content-type") == ctype
    assert r.header("content-length") == str(len(r.body))
    assert r.header("accept-ranges") == "bytes"


def test_etag_and_last_modified(server, tree):
    path = tree / "www" / "hello.txt"
    os.utime(path, (1700000000.5, 1700000000.25))
    r1 = get(server, "/static/hello.txt")
    etag = r1.header("etag")
    assert etag and re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', etag), etag
    lm = r1.header("last-modified")
    assert lm == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert email.utils.parsedate_to_datetime(lm).timestamp() == 1700000000
    # Stable while the file is unchanged; different once it changes.
    assert get(server, "/static/hello.txt").header("etag") == etag
    os.utime(path, (1700000001, 1700000001))
    assert get(server, "/static/hello.txt").header("etag") != etag


def test_percent_encoded_names(server):
    r = get(server, "/static/a%20b.txt")
    assert (r.status, r.body) == (200, b"space\n")
    r = get(server, "/static/sub%2Fdeep.txt")
    assert (r.status, r.body) == (200, b"deep\n")
    r = get(server, "/static//sub//deep.txt")
    assert (r.status, r.body) == (200, b"deep\n")
    # Decoded exactly once: %252e%252e is the file literally named "%2e%2e".
    r = get(server, "/static/%252e%252e")
    assert (r.status, r.body) == (200, b"literal percent name\n")


def test_empty_file(server):
    r = get(server, "/static/empty.txt")
    assert (r.status, r.body, r.header("content-length")) == (200, b"", "0")
    r = get(server, "/static/empty.txt", headers={"Range": "bytes=0-"})
    assert (r.status, r.body) == (200, b"")


# ---------------------------------------------------------------------------------------------
# Conditional requests

def test_if_none_match(server):
    etag = get(server, "/static/hello.txt").header("etag")
    lm = get(server, "/static/hello.txt").header("last-modified")
    for inm in (etag, "W/" + etag, f'"nope", {etag}', f'"a",W/{etag} , "b"', "*"):
        r = get(server, "/static/hello.txt", headers={"If-None-Match": inm})
        assert r.status == 304, (inm, r)
        assert r.header("etag") == etag
        assert r.header("last-modified") == lm
        assert r.header("content-length") is None
    for inm in ('"nope"', etag[:-2] + '"', "garbage"):
        r = get(server, "/static/hello.txt", headers={"If-None-Match": inm})
        assert r.status == 200, (inm, r)
        assert r.body == b"Hello, static world!\n"


def test_304_has_no_body(server):
    """A 304 and then a GET on the same connection: the GET parses right after the 304's head,
    so no body byte came with the 304."""
    etag = get(server, "/static/hello.txt").header("etag")
    with RawHTTP(server.addr("http")) as c:
        c.send(build_request("GET", "/static/hello.txt", headers={"If-None-Match": etag}) +
               build_request("HEAD", "/static/hello.txt", headers={"If-None-Match": etag}) +
               build_request("GET", "/static/data.json"))
        assert c.read_response().status == 304
        assert c.read_response(head=True).status == 304
        r = c.read_response()
        assert (r.status, r.body) == (200, b'{"a":1}\n')


def test_if_modified_since(server, tree):
    os.utime(tree / "www" / "hello.txt", (1700000000, 1700000000))
    lm = get(server, "/static/hello.txt").header("last-modified")
    etag = get(server, "/static/hello.txt").header("etag")
    assert get(server, "/static/hello.txt", headers={"If-Modified-Since": lm}).status == 304
    later = "Wed, 15 Nov 2023 00:00:00 GMT"
    assert get(server, "/static/hello.txt", headers={"If-Modified-Since": later}).status == 304
    # The obsolete date forms are accepted too.
    for d in ("Tuesday, 14-Nov-23 22:13:20 GMT", "Tue Nov 14 22:13:20 2023"):
        assert get(server, "/static/hello.txt", headers={"If-Modified-Since": d}).status == 304
    earlier = "Tue, 14 Nov 2023 22:13:19 GMT"
    r = get(server, "/static/hello.txt", headers={"If-Modified-Since": earlier})
    assert (r.status, r.body) == (200, b"Hello, static world!\n")
    r = get(server, "/static/hello.txt", headers={"If-Modified-Since": "not a date"})
    assert r.status == 200
    # If-None-Match wins over If-Modified-Since.
    r = get(server, "/static/hello.txt",
            headers={"If-None-Match": '"other"', "If-Modified-Since": lm})
    assert r.status == 200
    r = get(server, "/static/hello.txt",
            headers={"If-None-Match": etag, "If-Modified-Since": earlier})
    assert r.status == 304


# ---------------------------------------------------------------------------------------------
# Ranges

@pytest.mark.parametrize("spec,first,last", [
    ("bytes=0-0", 0, 0),
    ("bytes=10-19", 10, 19),
    ("bytes=90-", 90, 99),
    ("bytes=95-1000", 95, 99),
    ("bytes=-7", 93, 99),
    ("bytes=-500", 0, 99),
    ("BYTES=3-4", 3, 4),
])
def test_range_206(server, tree, spec, first, last):
    data = (tree / "www" / "digits.txt").read_bytes()
    r = get(server, "/static/digits.txt", headers={"Range": spec})
    assert r.status == 206, r
    assert r.body == data[first:last + 1]
    assert r.header("content-range") == f"bytes {first}-{last}/{len(data)}"
    assert r.header("content-length") == str(last - first + 1)
    assert r.header("content-type") == "text/plain; charset=utf-8"
    assert r.header("etag")


@pytest.mark.parametrize("spec", ["bytes=100-", "bytes=100-200", "bytes=5000-", "bytes=-0"])
def test_range_416(server, spec):
    r = get(server, "/static/digits.txt", headers={"Range": spec})
    assert r.status == 416, r
    assert r.header("content-range") == "bytes */100"
    assert b"range not satisfiable" in r.body


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "bytes=5-1", "items=0-1", "bytes=x-y",
                                  "bytes=0-1;", "bytes="])
def test_range_ignored_full_200(server, tree, spec):
    r = get(server, "/static/digits.txt", headers={"Range": spec})
    assert r.status == 200, r
    assert r.body == (tree / "www" / "digits.txt").read_bytes()
    assert r.header("content-range") is None


def test_if_range(server, tree):
    data = (tree / "www" / "digits.txt").read_bytes()
    first = get(server, "/static/digits.txt")
    etag, lm = first.header("etag"), first.header("last-modified")
    for ir in (etag, lm):
        r = get(server, "/static/digits.txt", headers={"Range": "bytes=1-2", "If-Range": ir})
        assert (r.status, r.body) == (206, data[1:3]), ir
    for ir in ('"stale"', "W/" + etag, "Mon, 01 Jan 2001 00:00:00 GMT"):
        r = get(server, "/static/digits.txt", headers={"Range": "bytes=1-2", "If-Range": ir})
        assert (r.status, r.body) == (200, data), ir


def test_head(server, tree):
    data = (tree / "www" / "index.html").read_bytes()
    full = get(server, "/static/index.html")
    with RawHTTP(server.addr("http")) as c:
        c.send(build_request("HEAD", "/static/index.html") +
               build_request("HEAD", "/static/index.html", headers={"Range": "bytes=0-1"}) +
               build_request("GET", "/static/index.html"))
        h = c.read_response(head=True)
        assert h.status == 200
        assert h.header("content-length") == str(len(data))
        assert h.header("content-type") == "text/html; charset=utf-8"
        assert h.header("etag") == full.header("etag")
        assert h.header("last-modified") == full.header("last-modified")
        # Range is defined for GET only: HEAD gets the 200 head.
        h2 = c.read_response(head=True)
        assert h2.status == 200 and h2.header("content-length") == str(len(data))
        r = c.read_response()
        assert (r.status, r.body) == (200, data)


def test_pipelined_files_in_order(server, tree):
    www = tree / "www"
    with RawHTTP(server.addr("http")) as c:
        c.send(b"".join([
            build_request("GET", "/static/hello.txt"),
            build_request("GET", "/static/digits.txt", headers={"Range": "bytes=50-59"}),
            build_request("GET", "/static/nope.txt"),
            build_request("GET", "/static/blob.bin"),
            build_request("GET", "/static/sub"),
            build_request("GET", "/static/site.css"),
        ]))
        assert c.read_response().body == (www / "hello.txt").read_bytes()
        assert c.read_response().body == b"0123456789"
        assert c.read_response().status == 404
        assert c.read_response().body == (www / "blob.bin").read_bytes()
        assert c.read_response().status == 404
        assert c.read_response().body == (www / "site.css").read_bytes()


def test_method_not_allowed(server):
    r = get(server, "/static/hello.txt", method="POST")
    assert r.status == 405
    assert "GET" in r.header("allow")


# ---------------------------------------------------------------------------------------------
# Large files

def read_body_sha256(addr, path, headers=None):
    """GET on a raw socket, hashing the body as it arrives. -> (status, headers text, sha, n)"""
    s = connect(addr, timeout=30)
    try:
        s.sendall(build_request("GET", path, headers=headers))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, "closed before the head"
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))
        h = hashlib.sha256(rest)
        n = len(rest)
        deadline = time.monotonic() + 60
        while n < length and time.monotonic() < deadline:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        return status_of(head + b"\r\n"), head.decode("latin-1"), h.hexdigest(), n
    finally:
        s.close()


@pytest.mark.parametrize("model", ["async", "threaded"])
def test_large_file_sha256(weft_factory, tree, model):
    data = random.Random(7).randbytes(20 * MiB + 12345)
    (tree / "www" / "big.bin").write_bytes(data)
    w = weft_factory("--static", str(tree / "www"), "--model", model)
    addr = w.addr("http")
    status, head, sha, n = read_body_sha256(addr, "/static/big.bin")
    assert status == 200
    assert n == len(data)
    assert sha == hashlib.sha256(data).hexdigest()
    # A range deep in the file.
    a, b = 7 * MiB + 3, 17 * MiB + 11
    status, head, sha, n = read_body_sha256(addr, "/static/big.bin",
                                            headers={"Range": f"bytes={a}-{b}"})
    assert status == 206
    assert f"Content-Range: bytes {a}-{b}/{len(data)}" in head
    assert n == b - a + 1
    assert sha == hashlib.sha256(data[a:b + 1]).hexdigest()


def test_large_file_many_clients(server, tree):
    """Several clients at once that read nothing at first: the server's sendfile meets EAGAIN,
    waits for the sockets to drain and resumes where it stopped."""
    data = random.Random(8).randbytes(24 * MiB)
    (tree / "www" / "big24.bin").write_bytes(data)
    addr = server.addr("http")
    socks = []
    for _ in range(6):
        s = connect(addr, timeout=30)
        s.sendall(build_request("GET", "/static/big24.bin"))
        socks.append(s)
    time.sleep(0.5)
    want = hashlib.sha256(data).hexdigest()
    for s in socks:
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, rest = buf.split(b"\r\n\r\n", 1)
        assert status_of(head + b"\r\n") == 200
        h = hashlib.sha256(rest)
        n = len(rest)
        while n < len(data):
            chunk = s.recv(1 << 20)
            assert chunk, f"closed after {n} bytes"
            h.update(chunk)
            n += len(chunk)
        assert n == len(data) and h.hexdigest() == want
        s.close()


def test_slow_reader_gets_whole_file(weft_factory, tree):
    data = random.Random(10).randbytes(32 * MiB)
    (tree / "www" / "slow.bin").write_bytes(data)
    w = weft_factory("--static", str(tree / "www"), "--http-keepalive-timeout", "1")
    s = connect(w.addr("http"), timeout=30)
    try:
        s.sendall(build_request("GET", "/static/slow.bin"))
        # Read slowly (about 5 MB/s) for longer than the keep-alive timeout: the response is
        # still being sent, so the connection is not idle. (A reader that lets no byte through
        # for longer than the timeout is cut, as nginx's send_timeout does.)
        got = bytearray()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            time.sleep(0.2)
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
            head_end = got.find(b"\r\n\r\n")
            if head_end >= 0 and len(got) - head_end - 4 >= len(data):
                break
        head_end = got.find(b"\r\n\r\n")
        assert head_end >= 0
        assert len(got) - head_end - 4 == len(data)
    finally:
        s.close()


def test_file_truncated_mid_flight(server, tree):
    """A file truncated while it is being sent: the Content-Length cannot be honoured, so the
    connection closes short of it; the server keeps serving."""
    www = tree / "www"
    data = random.Random(9).randbytes(48 * MiB)
    (www / "shrink.bin").write_bytes(data)
    s = connect(server.addr("http"), timeout=10)
    s.sendall(build_request("GET", "/static/shrink.bin"))
    buf = s.recv(4096)
    assert buf.startswith(b"HTTP/1.1 200")
    with open(www / "shrink.bin", "r+b") as f:
        f.truncate(1000)
    how, rest = wait_closed(s, timeout=8)
    s.close()
    assert how in ("eof", "reset")
    assert len(buf) + len(rest) < len(data)
    assert get(server, "/static/hello.txt").status == 200


# ---------------------------------------------------------------------------------------------
# Nothing outside the root

def test_directories_404(server):
    for path in ("/static/sub", "/static/sub/", "/static/", "/static//", "/static/sub/.."):
        r = get(server, path)
        assert r.status == 404, (path, r)
        assert r.header("content-type") == "application/json"


TRAVERSAL = [
    b"/static/../secret.txt",
    b"/static/../../secret.txt",
    b"/static/../www/../secret.txt",
    b"/static/sub/../../secret.txt",
    b"/static/./../secret.txt",
    b"/static//../secret.txt",
    b"/static/%2e%2e/secret.txt",
    b"/static/%2E%2E/secret.txt",
    b"/static/%2e%2E/secret.txt",
    b"/static/%2E%2E%2Fsecret.txt",
    b"/static/%2e%2e%2fsecret.txt",
    b"/static/..%2fsecret.txt",
    b"/static/..%2Fsecret.txt",
    b"/static/.%2e/secret.txt",
    b"/static/%2e./secret.txt",
    b"/static/sub/%2e%2e/%2e%2e/secret.txt",
    b"/static/sub%2f..%2f..%2fsecret.txt",
    b"/static/%252e%252e/secret.txt",
    b"/static/%252e%252e%252fsecret.txt",
    b"/static/..\\secret.txt",
    b"/static/..%5csecret.txt",
    b"/static/%2e%2e%5Csecret.txt",
    b"/static/....//secret.txt",
    b"/static/..;/secret.txt",
    b"/static/%00../secret.txt",
    b"/static/../secret.txt%00",
    b"/static/secret.txt%00.html",
    b"/static/%c0%ae%c0%ae/secret.txt",
    b"/static/%%32%65%%32%65/secret.txt",
    b"/static/%2",
    b"/static/%zz",
    b"/static/" + b"../" * 40 + b"etc/passwd",
    b"/static/" + b"%2e%2e/" * 40 + b"etc/passwd",
    b"/static/" + b"a/" * 2000 + b"../" * 2001 + b"secret.txt",
    b"/static/" + b"x" * 5000,
    b"http://weft.test/static/../secret.txt",
    b"http://weft.test/static/%2e%2e/secret.txt",
    b"/static/link-rel.txt",
    b"/static/link-abs.txt",
    b"/static/outside/secret.txt",
    b"/static/outside/www/hello.txt",
]


def test_traversal_never_escapes(weft_factory, tree):
    """Each target is sent byte for byte on its own connection (curl and http.client would
    normalise it first). No answer may carry the secret; each is a 4xx error or, for a name that
    is really inside the root, that file."""
    www = tree / "www"
    os.symlink("../secret.txt", www / "link-rel.txt")
    os.symlink(str(tree / "secret.txt"), www / "link-abs.txt")
    os.symlink("..", www / "outside")
    w = weft_factory("--static", str(www), "--http-max-head", "64KiB")
    addr = w.addr("http")
    for target in TRAVERSAL:
        raw = raw_exchange(addr, b"GET " + target + b" HTTP/1.1\r\nHost: weft.test\r\n\r\n")
        assert SECRET not in raw, target
        assert SECRET.strip() not in raw, target
        st = status_of(raw)
        assert st in (400, 404, 414), (target, raw[:300])
    # Still serving afterwards.
    assert get(w, "/static/hello.txt").status == 200


def test_symlinks(weft_factory, tree):
    www = tree / "www"
    os.symlink("../secret.txt", www / "escape.txt")
    os.symlink(str(tree / "secret.txt"), www / "escape-abs.txt")
    os.symlink(str(tree), www / "up")
    os.symlink("hello.txt", www / "inside.txt")
    w = weft_factory("--static", str(www))
    for name in ("escape.txt", "escape-abs.txt", "up/secret.txt", "up/www/hello.txt"):
        r = get(w, "/static/" + name)
        assert r.status == 404, (name, r)
        assert SECRET not in r.body
    # A relative symlink that stays inside the root is served where openat2 exists; without it
    # weft refuses every symlink (O_NOFOLLOW per component), which is also safe.
    r = get(w, "/static/inside.txt")
    assert r.status in (200, 404)
    if r.status == 200:
        assert r.body == (www / "hello.txt").read_bytes()


def test_fifo_does_not_block(weft_factory, tree):
    """Opening a FIFO without a writer would block the event loop: it is refused at once."""
    www = tree / "www"
    os.mkfifo(www / "pipe.txt")
    w = weft_factory("--static", str(www), "--workers", "1")
    t0 = time.monotonic()
    r = get(w, "/static/pipe.txt")
    assert r.status == 404
    assert time.monotonic() - t0 < 2
    assert get(w, "/static/hello.txt").status == 200


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_403(weft_factory, tree):
    www = tree / "www"
    p = www / "private.txt"
    p.write_bytes(b"private\n")
    p.chmod(0)
    w = weft_factory("--static", str(www))
    r = get(w, "/static/private.txt")
    assert r.status == 403
    assert b"private" not in r.body and str(www).encode() not in r.body
