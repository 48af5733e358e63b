"""End-to-end tests of `weft bench`: closed and open loop against a real `weft serve`, the report
table, --json, exit statuses, and response framings weft itself does not send (chunked, bodies
delimited by close) from a small raw-socket server."""
import json
import re
import socket
import subprocess
import threading

from conftest import WEFT_BIN, bench, free_port, metric, metrics_until
from conftest import http_url as url



def field(out, name):
    m = re.search(rf"^{re.escape(name)}\s+(\d+)", out, re.M)
    assert m, f"no {name!r} line in:\n{out}"
    return int(m.group(1))


def errors(out):
    m = re.search(r"^errors\s+(\d+) \((.*)\)$", out, re.M)
    assert m, out
    kinds = dict((k, int(v)) for k, v in (part.split() for part in m.group(2).split(", ")))
    return int(m.group(1)), kinds



def requests_200(weft):
    return metric(weft.metrics(), "weft_http_requests_total", 0, service="http", code="200")


def test_closed_counts_match_server(weft):
    before = requests_200(weft)
    p = bench("closed", "-c", 10, "-n", 1000, url(weft))
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "requests") == 1000
    total, kinds = errors(p.stdout)
    assert total == 0 and set(kinds) == {"connect", "read", "write", "timeout", "status",
                                         "protocol"}
    assert re.search(r"^status\s+200: 1000$", p.stdout, re.M), p.stdout
    assert re.search(r"^latency \(ms\)\s+p50\s+p90\s+p99\s+p99\.9\s+max$", p.stdout, re.M)
    assert re.search(r"^cpu\s+[\d.]+ % of one core$", p.stdout, re.M), p.stdout
    m = metrics_until(weft, lambda m: metric(m, "weft_http_requests_total", 0, service="http",
                                             code="200") >= before + 1000)
    assert metric(m, "weft_http_requests_total", 0, service="http", code="200") == before + 1000


def test_closed_new_conn_and_threads(weft):
    p = bench("closed", "-c", 4, "-t", 3, "-n", 200, "--new-conn", url(weft))
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "requests") == 200
    assert errors(p.stdout)[0] == 0
    assert "3 threads, 4 connections" in p.stdout


def test_closed_duration(weft):
    p = bench("closed", "-c", 2, "-d", "300ms", url(weft))
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "requests") > 0
    assert errors(p.stdout)[0] == 0
    dur = float(re.search(r"^duration\s+([\d.]+) s$", p.stdout, re.M).group(1))
    assert 0.25 <= dur < 2.0


def test_open_loop_rate(weft):
    p = bench("open", "--rps", 500, "-d", 2, url(weft))
    assert p.returncode == 0, p.stderr
    n = field(p.stdout, "requests")
    dropped = field(p.stdout, "dropped")
    assert 900 <= n <= 1000, p.stdout  # a loaded machine may stall all 64 connections briefly
    assert n + dropped + errors(p.stdout)[0] == 1000, p.stdout
    assert re.search(r"^\s+corrected(\s+[\d.]+){5}$", p.stdout, re.M), p.stdout
    assert re.search(r"^\s+uncorrected(\s+[\d.]+){5}$", p.stdout, re.M), p.stdout
    assert re.search(r"^target rps\s+500\.0$", p.stdout, re.M), p.stdout


def test_open_loop_drops_when_every_connection_is_busy(weft):
    # One connection, each answer 100 ms late: at 50/s most requests find it busy.
    p = bench("open", "--rps", 50, "-d", 1, "--concurrency", 1, url(weft, "/sleep?ms=100"))
    assert p.returncode == 0, p.stderr
    n, dropped = field(p.stdout, "requests"), field(p.stdout, "dropped")
    assert n + dropped == 50, p.stdout
    assert 5 <= n <= 15 and dropped >= 35, p.stdout


def test_json_output(weft, tmp_path):
    out = tmp_path / "b.json"
    p = bench("closed", "-c", 2, "-n", 50, "--json", out, url(weft))
    assert p.returncode == 0, p.stderr
    j = json.loads(out.read_text())
    for key in ("mode", "url", "threads", "connections", "requests", "duration_s", "rps",
                "errors", "errors_total", "status", "latency_ms", "cpu_percent"):
        assert key in j, key
    assert j["mode"] == "closed" and j["requests"] == 50 and j["errors_total"] == 0
    assert j["status"] == {"200": 50}
    assert set(j["latency_ms"]) >= {"p50", "p90", "p99", "p99_9", "max"}
    assert 0 < j["latency_ms"]["p50"] <= j["latency_ms"]["p99"] <= j["latency_ms"]["max"]

    # --co-correct: the table gets a second row, the JSON the corrected figures and E
    p = bench("closed", "-c", 2, "-n", 50, "--co-correct", "--json", out, url(weft))
    assert p.returncode == 0, p.stderr
    assert re.search(r"^  measured +[\d.]+", p.stdout, re.M), p.stdout
    assert re.search(r"^  co-corrected +[\d.]+", p.stdout, re.M), p.stdout
    assert re.search(r"^co-correction: expected interval [\d.]+ ms", p.stdout, re.M), p.stdout
    j = json.loads(out.read_text())
    assert j["co_interval_ms"] > 0 and j["co_added"] >= 0
    co = j["latency_co_corrected_ms"]
    assert j["latency_ms"]["p50"] <= co["p50"] <= co["p99"] <= co["max"] == j["latency_ms"]["max"]

    # --busy-poll: the same counts; the CPU line says how much of it went to polling
    p = bench("closed", "-c", 2, "-n", 300, "-t", 1, "--busy-poll", 200, "--json", out, url(weft))
    assert p.returncode == 0, p.stderr
    assert re.search(r"^cpu +[\d.]+ % of one core \([\d.]+ % of it polling", p.stdout, re.M), p.stdout
    j = json.loads(out.read_text())
    assert j["requests"] == 300 and j["errors_total"] == 0 and j["busy_poll_us"] == 200
    # each wait for an answer polls first: some time went to it, never more than the run
    assert 0 < j["busy_poll_percent"] <= 100.5, j

    out2 = tmp_path / "o.json"
    p = bench("open", "--rps", 100, "-d", "0.5", "--json", out2, url(weft))
    assert p.returncode == 0, p.stderr
    j = json.loads(out2.read_text())
    assert j["mode"] == "open" and j["target_rps"] == 100
    assert "dropped" in j and "latency_uncorrected_ms" in j
    assert j["requests"] + j["dropped"] + j["errors_total"] == 50


def think_run_checks(p, out, think_ms=20):
    """A closed -c 2 -d 1 run with --think: each connection's cycle is the think time plus a
    response's latency, so 2 connections make at most 2 x 1 s / think requests, and the latency
    (from the send) leaves the think time out."""
    assert p.returncode == 0, p.stderr
    assert re.search(rf"^think +{think_ms}\.000 ms \(", p.stdout, re.M), p.stdout
    j = json.loads(out.read_text())
    assert j["think_ms"] == think_ms and j["errors_total"] == 0, j
    # At most 50 starts per connection in 1 s (0, 20, ... 980 ms); the lower bound leaves each
    # cycle 13 ms above the think time for a loaded machine.
    assert 60 <= j["rps"] <= 100, j
    assert j["latency_ms"]["p50"] < think_ms / 2, j


def test_closed_think_time(weft, tmp_path):
    out = tmp_path / "t.json"
    think_run_checks(bench("closed", "-c", 2, "--think", "20ms", "-d", 1, "--json", out, url(weft)),
                     out)

    # -n: exactly TOTAL requests; each connection's 10 go out 10 ms apart
    html = tmp_path / "t.html"
    p = bench("closed", "-c", 2, "-n", 20, "--think", "10ms", "--json", out, "--html", html,
              url(weft))
    assert p.returncode == 0, p.stderr
    j = json.loads(out.read_text())
    assert j["requests"] == 20 and j["errors_total"] == 0, j
    assert 0.09 <= j["duration_s"] < 1.0, j
    assert "<th>think time</th><td>10 ms after each response" in html.read_text()

    # -d: a wait that outlasts the run neither starts a request nor holds the end back
    p = bench("closed", "-c", 2, "--think", "5s", "-d", "300ms", "--json", out, url(weft))
    assert p.returncode == 0, p.stderr
    j = json.loads(out.read_text())
    assert j["requests"] == 2 and j["errors_total"] == 0 and j["unanswered"] == 0, j
    assert j["duration_s"] < 1.0, j

    # a new connection per request waits too, closed, and reconnects for the next
    p = bench("closed", "-c", 2, "-n", 10, "--think", "1ms", "--new-conn", url(weft))
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "requests") == 10 and errors(p.stdout)[0] == 0, p.stdout

    # without --think the report and the JSON are as before
    p = bench("closed", "-c", 2, "-n", 10, "--json", out, url(weft))
    assert p.returncode == 0 and "think" not in p.stdout, p.stdout
    assert "think_ms" not in json.loads(out.read_text())


def test_usage_errors_exit_2():
    for args in ([],
                 ["nosuchmode", "http://127.0.0.1:1/"],
                 ["closed", "--bogus", "http://127.0.0.1:1/"],
                 ["closed", "-c"],
                 ["closed", "-c", "0", "http://127.0.0.1:1/"],
                 ["closed"],
                 ["closed", "ftp://x/"],
                 ["open", "-d", "1", "http://127.0.0.1:1/"],
                 ["open", "--rps", "10", "http://127.0.0.1:1/"],
                 ["closed", "-n", "10", "-d", "1", "http://127.0.0.1:1/"],
                 ["sweep", "http://127.0.0.1:1/"],
                 ["open", "--rps", "10", "-d", "1", "--co-correct", "http://127.0.0.1:1/"],
                 ["closed", "--co-correct", "--subscribers", "2", "ws://127.0.0.1:1/ws"],
                 ["closed", "--busy-poll", "50", "--subscribers", "2", "ws://127.0.0.1:1/ws"],
                 ["closed", "--busy-poll", "x", "http://127.0.0.1:1/"],
                 ["open", "--rps", "10", "-d", "1", "--think", "5ms", "http://127.0.0.1:1/"],
                 ["preset", "--think", "5ms", "http://127.0.0.1:1/"],
                 ["sweep", "--concurrencies", "1,2", "--think", "5ms", "http://127.0.0.1:1/"],
                 ["closed", "--think", "5ms", "--subscribers", "2", "ws://127.0.0.1:1/ws"],
                 ["closed", "--think", "5ms", "ws://127.0.0.1:1/ws"],
                 ["closed", "--think", "x", "http://127.0.0.1:1/"],
                 ["closed", "--think", "-1ms", "http://127.0.0.1:1/"],
                 ["closed", "--think", "3601", "http://127.0.0.1:1/"]):
        p = bench(*args)
        assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
        assert p.stdout == "", args
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("weft bench: "), (args,
                                                                                  p.stderr)



def test_connect_errors_strict_exit_1():
    target = f"http://127.0.0.1:{free_port()}/"
    p = bench("closed", "-c", 1, "-n", 3, target)
    assert p.returncode == 0, p.stderr
    total, kinds = errors(p.stdout)
    assert total == 3 and kinds["connect"] == 3
    assert field(p.stdout, "requests") == 0
    p = bench("closed", "-c", 1, "-n", 3, "--strict", target)
    assert p.returncode == 1


def test_status_errors_and_max_error_rate(weft):
    p = bench("closed", "-c", 2, "-n", 20, url(weft, "/nope"))
    assert p.returncode == 0
    assert field(p.stdout, "requests") == 20
    assert errors(p.stdout)[1]["status"] == 20
    assert re.search(r"^status\s+404: 20$", p.stdout, re.M)
    p = bench("closed", "-c", 2, "-n", 20, "--max-error-rate", "0.5", url(weft, "/nope"))
    assert p.returncode == 1
    p = bench("closed", "-c", 2, "-n", 20, "--max-error-rate", "0.5", url(weft))
    assert p.returncode == 0


def test_timeout(weft):
    p = bench("closed", "-c", 1, "-n", 2, "--timeout", "200ms", url(weft, "/sleep?ms=3000"))
    assert p.returncode == 0, p.stderr
    assert errors(p.stdout)[1]["timeout"] == 2


def test_post_body_and_headers(weft):
    p = bench("closed", "-c", 2, "-n", 30, "-m", "POST", "-H", "Content-Type: application/json",
              "-b", '{"a":"abc"}', url(weft, "/reverse"))
    assert p.returncode == 0, p.stderr
    assert re.search(r"^status\s+200: 30$", p.stdout, re.M), p.stdout


class RawServer:
    """Answers every request on a connection with `response` (bytes), then closes if
    close_after; for framings weft does not send."""

    def __init__(self, response, close_after):
        self.response, self.close_after = response, close_after
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        with c:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                buf = buf.split(b"\r\n\r\n", 1)[1]
                c.sendall(self.response)
                if self.close_after:
                    return

    def close(self):
        self.sock.close()


def test_chunked_and_close_delimited_bodies():
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n1;ext=1\r\n \r\n0\r\nX-Trailer: 1\r\n\r\n")
    until_close = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 40000
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    garbage = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"
    for response, close_after, code, errs in ((chunked, False, 200, 0),
                                              (until_close, True, 200, 0),
                                              (interim, False, 201, 0),
                                              (garbage, False, 200, 40)):
        srv = RawServer(response, close_after)
        try:
            p = bench("closed", "-c", 2, "-n", 40, "--timeout", "5s",
                      f"http://127.0.0.1:{srv.port}/")
        finally:
            srv.close()
        assert p.returncode == 0, p.stderr
        total, kinds = errors(p.stdout)
        if errs:
            # Bytes past a response end that request with a protocol error (or the next one,
            # when they arrive in a later read).
            assert total == kinds["protocol"] > 0, p.stdout
            assert field(p.stdout, "requests") + total >= 40, p.stdout
        else:
            assert total == 0, (response, p.stdout)
            assert field(p.stdout, "requests") == 40, p.stdout
            assert re.search(rf"^status\s+{code}: 40$", p.stdout, re.M), p.stdout


def test_help():
    p = subprocess.run([WEFT_BIN, "help", "bench"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "weft bench closed" in p.stdout and "--rps" in p.stdout
    assert "--think T" in p.stdout


def test_unanswered_requests_are_reported(weft_factory, tmp_path):
    # The blocking model serves one keep-alive connection at a time: of 5 connections, the
    # other 4 wait for the whole run, and the report must say so rather than show 0 errors only.
    w = weft_factory("--model", "blocking")
    out = tmp_path / "r.json"
    p = bench("closed", "-c", 5, "-t", 1, "-d", 0.5, "--json", out, url(w))
    assert p.returncode == 0, p.stderr
    unanswered = field(p.stdout, "unanswered")
    assert 4 <= unanswered <= 5, p.stdout
    assert json.loads(out.read_text())["unanswered"] == unanswered
    assert field(p.stdout, "requests") > 0, p.stdout


def test_short_options_take_attached_values_like_wrk(weft):
    before = requests_200(weft)
    p = bench("closed", "-t1", "-c4", "-n200", url(weft))
    assert p.returncode == 0, p.stderr
    assert "1 threads, 4 connections" in p.stdout, p.stdout
    assert field(p.stdout, "requests") == 200, p.stdout
    m = metrics_until(weft, lambda m: metric(m, "weft_http_requests_total", 0, service="http",
                                             code="200") - before == 200)
    assert metric(m, "weft_http_requests_total", 0, service="http", code="200") - before == 200
    assert bench("closed", "-t0", url(weft)).returncode == 2
    assert bench("closed", "-x5", url(weft)).returncode == 2
