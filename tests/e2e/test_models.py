"""End-to-end tests of the http service under each --model (SPEC, "HTTP service"): async (the
event loop), threaded (a thread per connection) and blocking (one connection at a time) run the
same handlers, count the same metrics and shut down cleanly; threaded runs connections in
parallel, blocking one after the other."""
import os
import signal
import threading
import time

import pytest

from conftest import RawHTTP, build_request, metric, wait_closed

HELLO = b"Hello, World!"
MODELS = ["async", "threaded", "blocking"]


@pytest.fixture(params=MODELS)
def model_weft(request, weft_factory):
    w = weft_factory("--model", request.param)
    w.model = request.param
    return w


def test_endpoints(model_weft):
    w = model_weft
    with RawHTTP(w.addr("http")) as c:
        r = c.request("GET", "/")
        assert r.status == 200 and r.body == HELLO, r
        assert (r.header("content-type") or "").startswith("text/plain")
        r = c.request("HEAD", "/")
        assert r.status == 200 and r.body == b"" and r.header("content-length") == "13", r
        r = c.request("POST", "/reverse", body='{"a":"héllo","b":"🙂x","c":""}'.encode(),
                      headers={"Content-Type": "application/json"})
        assert r.status == 200, r
        assert r.body.decode() == '{"data":["olléh","x🙂",""]}', r.body
        r = c.request("POST", "/reverse", body=b'{"a":1}')
        assert r.status == 400 and b"error" in r.body, r
        r = c.request("POST", "/echo", body=b"model " + w.model.encode(),
                      headers={"Content-Type": "text/x-model"})
        assert r.status == 200 and r.body == b"model " + w.model.encode(), r
        assert r.header("content-type") == "text/x-model"
        t = time.monotonic()
        r = c.request("GET", "/sleep?ms=50")
        took = time.monotonic() - t
        assert r.status == 200, r
        assert took >= 0.05, f"/sleep?ms=50 answered after {took * 1000:.1f} ms"
        assert took < 2, f"/sleep?ms=50 took {took:.2f}s"
        t = time.monotonic()
        r = c.request("GET", "/block?ms=20")
        took = time.monotonic() - t
        assert r.status == 200, r
        assert took >= 0.02, f"/block?ms=20 answered after {took * 1000:.1f} ms"
        r = c.request("GET", "/sleep?ms=99999")
        assert r.status == 400, r
        r = c.request("GET", "/nope")
        assert r.status == 404, r
        r = c.request("PUT", "/")
        assert r.status == 405 and r.header("allow"), r
        # Chunked body and Expect: 100-continue work under every model.
        c.send(b"POST /echo HTTP/1.1\r\nHost: weft.test\r\nTransfer-Encoding: chunked\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.read_response(timeout=5)
        assert r.status == 100, r
        c.send(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"abcde", r


def test_pipelined_in_order(model_weft):
    w = model_weft
    reqs = []
    want = []
    for i in range(30):
        k = i % 5
        if k == 0:
            reqs.append(build_request("GET", "/"))
            want.append(HELLO)
        elif k == 1:
            body = f"pipelined {i}".encode()
            reqs.append(build_request("POST", "/echo", body=body))
            want.append(body)
        elif k == 2:
            reqs.append(build_request("GET", "/sleep?ms=10"))
            want.append(None)
        elif k == 3:
            reqs.append(build_request("GET", "/block?ms=5"))
            want.append(None)
        else:
            reqs.append(build_request("POST", "/reverse", body=f'{{"k":"{i:03d}"}}'))
            want.append(('{"data":["' + f"{i:03d}"[::-1] + '"]}').encode())
    with RawHTTP(w.addr("http"), timeout=10) as c:
        c.send(b"".join(reqs))
        for i, body in enumerate(want):
            r = c.read_response(timeout=10)
            assert r.status == 200, f"response {i}: {r}"
            if body is not None:
                assert r.body == body, f"response {i} out of order: {r.body!r}, want {body!r}"
        # The connection is still usable.
        assert c.request("GET", "/").body == HELLO


def count_200(w):
    return metric(w.metrics(), "weft_http_requests_total", 0, service="http", code="200")


def test_metrics_count_requests(model_weft):
    w = model_weft
    before = count_200(w)
    before404 = metric(w.metrics(), "weft_http_requests_total", 0, service="http", code="404")
    with RawHTTP(w.addr("http")) as c:
        for _ in range(5):
            assert c.request("GET", "/").status == 200
        assert c.request("POST", "/echo", body=b"x").status == 200
        assert c.request("GET", "/sleep?ms=1").status == 200
        assert c.request("GET", "/missing").status == 404
    deadline = time.monotonic() + 3
    while True:
        after = count_200(w)
        if after - before >= 7 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert after - before == 7, \
        f"--model {w.model}: 7 answers of 200 counted as {after - before}"
    after404 = metric(w.metrics(), "weft_http_requests_total", 0, service="http", code="404")
    assert after404 - before404 == 1, f"--model {w.model}: one 404 counted as " \
                                      f"{after404 - before404}"
    m = w.metrics()
    total = metric(m, "weft_connections_total", 0, service="http")
    assert total >= 1, f"--model {w.model}: weft_connections_total{{service=http}} is {total}"


def test_sigterm_exits_0(model_weft):
    w = model_weft
    c = RawHTTP(w.addr("http"))
    try:
        assert c.request("GET", "/").status == 200  # an idle keep-alive connection stays open
        t = time.monotonic()
        w.signal(signal.SIGTERM)
        rc = w.wait(10)
        took = time.monotonic() - t
        assert rc is not None, f"--model {w.model}: weft did not exit within 10 s of SIGTERM"
        assert rc == 0, f"--model {w.model}: exit status {rc} after SIGTERM"
        assert took < 5, f"--model {w.model}: took {took:.1f}s to exit with an idle connection"
        how, extra = wait_closed(c.sock, timeout=2)
        assert how in ("eof", "reset"), "the idle connection was left open"
    finally:
        c.close()


def test_sigterm_finishes_in_flight_request(model_weft):
    w = model_weft
    with RawHTTP(w.addr("http")) as c:
        c.send(build_request("GET", "/sleep?ms=400"))
        time.sleep(0.1)
        w.signal(signal.SIGTERM)
        try:
            r = c.read_response(timeout=5)
        finally:
            rc = w.wait(10)  # before any assertion: teardown would signal again
        assert r.status == 200, f"--model {w.model}: in-flight /sleep got {r} on SIGTERM"
        # Like the async model (and nginx): the last answer says the connection closes.
        assert (r.header("connection") or "").lower() == "close", \
            f"--model {w.model}: the in-flight answer during shutdown lacks Connection: close: " \
            f"{r.headers}"
    assert rc == 0, f"--model {w.model}: exit status {rc}"


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_count(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def test_idle_uses_no_cpu(model_weft):
    """An idle weft waits in the kernel: no busy loop in any model."""
    w = model_weft
    with RawHTTP(w.addr("http")) as c:
        assert c.request("GET", "/").status == 200
    time.sleep(0.2)
    c0 = cpu_seconds(w.pid)
    time.sleep(1.0)
    used = cpu_seconds(w.pid) - c0
    assert used < 0.15, f"--model {w.model}: idle weft used {used:.2f}s of CPU in 1 s"


def test_threaded_runs_connections_in_parallel(weft_factory):
    w = weft_factory("--model", "threaded")
    addr = w.addr("http")
    n = 50
    results = [None] * n
    barrier = threading.Barrier(n, timeout=10)
    base_threads = thread_count(w.pid)

    def one(i):
        try:
            with RawHTTP(addr, timeout=15) as c:
                barrier.wait()
                r = c.request("GET", "/sleep?ms=200", timeout=15)
                results[i] = r.status
        except Exception as e:  # noqa: BLE001
            results[i] = repr(e)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    t = time.monotonic()
    for th in threads:
        th.start()
    max_threads = base_threads
    while any(th.is_alive() for th in threads) and time.monotonic() - t < 20:
        max_threads = max(max_threads, thread_count(w.pid))
        time.sleep(0.01)
    for th in threads:
        th.join(20)
    took = time.monotonic() - t
    assert results == [200] * n, f"results: {results}"
    assert took < 3.0, f"50 concurrent /sleep?ms=200 took {took:.2f}s with --model threaded " \
                       f"(serially: 10 s)"
    # A thread per connection: weft had about 50 more threads while they were open.
    assert max_threads - base_threads >= 40, \
        f"--model threaded: {base_threads} threads before, at most {max_threads} with {n} " \
        f"connections open: not a thread per connection"


def test_threaded_block_runs_in_parallel(weft_factory):
    w = weft_factory("--model", "threaded")
    addr = w.addr("http")
    n = 20
    results = [None] * n

    def one(i):
        try:
            with RawHTTP(addr, timeout=15) as c:
                results[i] = c.request("GET", "/block?ms=300", timeout=15).status
        except Exception as e:  # noqa: BLE001
            results[i] = repr(e)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    took = time.monotonic() - t
    assert results == [200] * n, results
    assert took < 2.5, f"20 concurrent /block?ms=300 took {took:.2f}s with --model threaded"


def test_blocking_serves_one_connection_at_a_time(weft_factory):
    w = weft_factory("--model", "blocking")
    addr = w.addr("http")
    a = RawHTTP(addr, timeout=10)
    b = RawHTTP(addr, timeout=10)
    try:
        r = a.request("GET", "/")
        assert r.status == 200
        # b's connection is accepted by the kernel, but weft is busy with a (kept alive).
        b.send(build_request("POST", "/echo", body=b"second"))
        b.sock.settimeout(0.8)
        try:
            early = b.sock.recv(100)
        except OSError:
            early = None
        assert early is None, f"--model blocking answered a second connection while the first " \
                              f"was open: {early!r}"
        # a still works, and is still served first.
        r = a.request("POST", "/echo", body=b"first")
        assert r.status == 200 and r.body == b"first"
        t = time.monotonic()
        a.close()
        r = b.read_response(timeout=5)
        took = time.monotonic() - t
        assert r.status == 200 and r.body == b"second", r
        assert took < 1.5, f"the second connection was answered {took:.2f}s after the first closed"
    finally:
        a.close()
        b.close()


def test_blocking_sleep_is_serial(weft_factory):
    """Under --model blocking, 4 connections each asking /sleep?ms=150 (closing after) take
    about 4 x 150 ms: they run one after the other."""
    w = weft_factory("--model", "blocking")
    addr = w.addr("http")
    n = 4
    results = [None] * n

    def one(i):
        try:
            with RawHTTP(addr, timeout=15) as c:
                results[i] = c.request("GET", "/sleep?ms=150",
                                       headers={"Connection": "close"}, timeout=15).status
        except Exception as e:  # noqa: BLE001
            results[i] = repr(e)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    took = time.monotonic() - t
    assert results == [200] * n, results
    assert took >= 0.55, f"4 x /sleep?ms=150 took {took:.2f}s under --model blocking: parallel?"
    assert took < 5
