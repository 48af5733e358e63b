"""End-to-end tests of `weft bench`'s sweep, preset and models modes and --repeat; the
coordinated-omission check (an open loop against a server stopped for a second reports the
stall in its p99, a closed loop of the same load does not); and a count checked against nginx's
own access log."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import SANITIZER_MARKERS, WEFT_BIN, bench, free_port
from conftest import http_url as url




def table_rows(out):
    """{label: [numbers...]} for the rows of the tables in out (labels may contain a space)."""
    rows = {}
    for line in out.splitlines():
        m = re.fullmatch(r"(c=\d+|open \d+%|run \d+(?: \(median\))?|blocking|threaded|async)"
                         r"((?:\s+[\d.]+)+)", line.strip())
        if m:
            rows[m.group(1)] = [float(x) for x in m.group(2).split()]
    return rows


def usage_error(p):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("weft bench: "), p.stderr
    return p.stderr


# ---- sweep and --repeat ----

def test_sweep_points_and_json(weft, tmp_path):
    out = tmp_path / "s.json"
    p = bench("sweep", "--concurrencies", "1,4", "-d", "0.5", "--repeat", 2, "--json", out,
              url(weft))
    assert p.returncode == 0, p.stderr
    rows = table_rows(p.stdout)
    assert list(rows) == ["c=1", "c=4"], p.stdout
    assert "the median of 2 runs" in p.stdout
    j = json.loads(out.read_text())
    assert j["mode"] == "sweep"
    assert [r["label"] for r in j["runs"]] == ["c=1", "c=4"]
    assert [r["connections"] for r in j["runs"]] == [1, 4]
    for r in j["runs"]:
        assert r["mode"] == "closed" and r["requests"] > 0 and r["errors_total"] == 0, r
        # One run of 0.5 s, not the two runs added up.
        assert 0.4 <= r["duration_s"] < 1.5, r


def test_sweep_with_total(weft):
    p = bench("sweep", "--concurrencies", "2,3", "-n", 300, url(weft))
    assert p.returncode == 0, p.stderr
    rows = table_rows(p.stdout)
    assert list(rows) == ["c=2", "c=3"] and all(r[0] == 300 for r in rows.values()), p.stdout


def test_sweep_usage_errors():
    target = "http://127.0.0.1:1/"
    for bad in ("1,,2", "0", "a", "1,", ",1", "1;2", "-1", "", "1," * 64 + "1"):
        usage_error(bench("sweep", "--concurrencies", bad, target))
    assert "--concurrencies" in usage_error(bench("sweep", target))
    usage_error(bench("closed", "--concurrencies", "1,2", target))
    usage_error(bench("sweep", "--concurrencies", "1", "--repeat", 0, target))


def test_closed_repeat_prints_runs_and_median(weft, tmp_path):
    out = tmp_path / "r.json"
    p = bench("closed", "-c", 2, "-n", 200, "--repeat", 3, "--json", out, url(weft))
    assert p.returncode == 0, p.stderr
    rows = table_rows(p.stdout)
    assert len(rows) == 3 and all(r[0] == 200 for r in rows.values()), p.stdout
    median = [k for k in rows if k.endswith("(median)")]
    assert len(median) == 1, p.stdout
    # The median run by req/s, then that run in full.
    rps = sorted(r[1] for r in rows.values())
    assert rows[median[0]][1] == rps[1], p.stdout
    assert re.search(r"^the median of 3 runs by req/s: run \d$", p.stdout, re.M), p.stdout
    assert re.search(r"^requests\s+200$", p.stdout, re.M), p.stdout
    j = json.loads(out.read_text())
    assert len(j["runs"]) == 3 and sum(r["requests"] for r in j["runs"]) == 600


def test_open_repeat_and_warmup(weft):
    p = bench("open", "--rps", 200, "-d", "0.5", "--repeat", 2, "--warmup", "0.2", url(weft))
    assert p.returncode == 0, p.stderr
    rows = table_rows(p.stdout)
    assert len(rows) == 2, p.stdout
    # target/s, requests: the warm-up's requests are not counted.
    for r in rows.values():
        assert r[0] == 200 and 90 <= r[1] <= 100, p.stdout
    assert "by corrected p99" in p.stdout


# ---- preset ----

def check_open_rows(j, fractions, conns=None):
    closed = [r for r in j["runs"] if r["mode"] == "closed"]
    opened = [r for r in j["runs"] if r["mode"] == "open"]
    capacity = max(r["rps"] for r in closed)
    assert capacity > 0
    assert [r["label"] for r in opened] == [f"open {round(f * 100)}%" for f in fractions]
    for r, f in zip(opened, fractions):
        assert r["target_rps"] == pytest.approx(capacity * f, rel=1e-9), (r, capacity)
        assert r["requests"] > 0 and "dropped" in r and "latency_uncorrected_ms" in r
        if conns is not None:
            assert r["connections"] == conns
    return closed, opened


def test_preset_smoke(weft, tmp_path):
    out = tmp_path / "p.json"
    p = bench("preset", "--profile", "smoke", "--json", out, url(weft))
    assert p.returncode == 0, p.stderr
    rows = table_rows(p.stdout)
    assert list(rows) == ["c=1", "c=4", "c=16", "open 50%", "open 90%", "open 110%"], p.stdout
    best = max(rows[k][1] for k in ("c=1", "c=4", "c=16"))
    m = re.search(r"^capacity: ([\d.]+) req/s at (c=\d+)$", p.stdout, re.M)
    assert m and float(m.group(1)) == pytest.approx(best, abs=0.06), p.stdout
    # The open table: target/s at 50, 90 and 110 % of the capacity.
    for label, f in (("open 50%", 0.5), ("open 90%", 0.9), ("open 110%", 1.1)):
        assert rows[label][0] == pytest.approx(best * f, rel=1e-3, abs=0.1), p.stdout
    assert "p99 unc" in p.stdout and "dropped" in p.stdout
    j = json.loads(out.read_text())
    assert j["mode"] == "preset"
    closed, _ = check_open_rows(j, (0.5, 0.9, 1.1), conns=64)
    assert [r["connections"] for r in closed] == [1, 4, 16]


def test_preset_config_overrides(weft, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"concurrencies": [2, 3], "duration": 0.3, "open_duration": 0.4,
                               "loads": [0.25, 0.5], "concurrency_cap": 8, "repeat": 1,
                               "warmup": 0, "threads": 1}))
    out = tmp_path / "p.json"
    p = bench("preset", "--profile", "stress", "--config", cfg, "--json", out, url(weft))
    assert p.returncode == 0, p.stderr
    assert list(table_rows(p.stdout)) == ["c=2", "c=3", "open 25%", "open 50%"], p.stdout
    j = json.loads(out.read_text())
    closed, opened = check_open_rows(j, (0.25, 0.5), conns=8)
    assert all(r["threads"] == 1 for r in j["runs"])
    assert all(0.25 <= r["duration_s"] < 1.0 for r in closed), closed
    assert all(0.35 <= r["duration_s"] < 1.5 for r in opened), opened

    # Flags given on the command line win over the config: -d for every run, -c for the cap.
    p = bench("preset", "--config", cfg, "-d", "0.2", "-c", 5, "--json", out, url(weft))
    assert p.returncode == 0, p.stderr
    j = json.loads(out.read_text())
    check_open_rows(j, (0.25, 0.5), conns=5)
    assert all(r["duration_s"] < 0.6 for r in j["runs"]), j


def test_preset_config_errors(tmp_path):
    target = "http://127.0.0.1:1/"
    cfg = tmp_path / "bad.json"
    for text, words in (('{"concurrencies": [1], "bogus_key": 1}', ("bogus_key", "unknown")),
                        ('{"repeat": 0}', ("'repeat'",)),
                        ('{"repeat": 1.5}', ("'repeat'",)),
                        ('{"duration": -1}', ("'duration'",)),
                        ('{"duration": "5s"}', ("'duration'",)),
                        ('{"warmup": -0.5}', ("'warmup'",)),
                        ('{"concurrencies": []}', ("'concurrencies'",)),
                        ('{"concurrencies": [1, 0]}', ("'concurrencies'",)),
                        ('{"concurrencies": "1,2"}', ("'concurrencies'",)),
                        ('{"loads": [0.5, 0]}', ("'loads'",)),
                        ('{"concurrency_cap": 0}', ("'concurrency_cap'",)),
                        ('{"threads": 5000}', ("'threads'",)),
                        ('[1, 2]', ("JSON object",)),
                        ('{"repeat": 1,}', ("line 1",))):
        cfg.write_text(text)
        err = usage_error(bench("preset", "--config", cfg, target))
        assert str(cfg) in err, err
        for w in words:
            assert w in err, (text, err)
    err = usage_error(bench("preset", "--config", tmp_path / "missing.json", target))
    assert "missing.json" in err
    usage_error(bench("preset", "--profile", "nope", target))
    usage_error(bench("preset", "-n", 10, target))
    usage_error(bench("sweep", "--concurrencies", "1", "--profile", "smoke", target))


# ---- models ----

def marked_pids(mark):
    """PIDs of the processes whose environment holds mark."""
    pids = []
    needle = mark.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read():
                    pids.append(int(name))
        except OSError:
            continue
    return pids


def marked_servers(mark):
    """The marked processes that are `weft serve` (past exec, not a fork still in weft bench)."""
    out = []
    for pid in marked_pids(mark):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().split(b"\0")[1:2] == [b"serve"]:
                    out.append(pid)
        except OSError:
            continue
    return out


def marked_env():
    mark = f"WEFT_TEST_MARK={uuid.uuid4().hex}"
    env = dict(os.environ)
    k, v = mark.split("=", 1)
    env[k] = v
    return mark, env


def wait_for(cond, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


def test_models_compare_and_clean_up(tmp_path):
    # The servers inherit weft bench's environment: a unique variable finds them in /proc
    # whatever else runs on the machine, and after weft bench is gone.
    mark, env = marked_env()
    out = tmp_path / "m.json"
    p = subprocess.Popen([WEFT_BIN, "bench", "models", "-d", "1", "-c", "4", "--json", str(out),
                          "/"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)
    try:
        saw_server = wait_for(lambda: marked_servers(mark), 10)
        stdout, stderr = p.communicate(timeout=40)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    for marker in SANITIZER_MARKERS:
        assert marker not in stderr, stderr
    assert saw_server, "never saw a server started by weft bench models"
    assert p.returncode == 0, stderr
    rows = table_rows(stdout)
    assert list(rows) == ["blocking", "threaded", "async"], stdout
    assert all(r[0] > 0 for r in rows.values()), stdout
    assert stderr == "", stderr
    j = json.loads(out.read_text())
    assert [r["label"] for r in j["runs"]] == ["blocking", "threaded", "async"]
    assert all(r["requests"] > 0 and r["connections"] == 4 for r in j["runs"])
    assert marked_pids(mark) == [], "weft bench models left a server behind"


def test_models_killed_takes_its_server_along():
    mark, env = marked_env()
    p = subprocess.Popen([WEFT_BIN, "bench", "models", "-d", "20", "/"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        assert wait_for(lambda: marked_servers(mark), 10), "no server started"
        time.sleep(0.5)  # into the run
        assert marked_servers(mark) and p.poll() is None
        p.kill()
        p.wait()
        # The server gets SIGTERM when weft bench dies and drains for at most 2 s.
        assert wait_for(lambda: marked_pids(mark) == [], 8), "a server outlived weft bench"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for pid in marked_pids(mark):
            os.kill(pid, signal.SIGKILL)


def test_models_usage_errors():
    usage_error(bench("models", "ws://127.0.0.1:1/ws"))
    usage_error(bench("models", "-m", "GET", "--rps", "5", "/"))


# ---- coordinated omission ----

STALL_S = 1.0


def run_with_stall(weft, args):
    """Runs weft bench with args (plus --json) and stops weft for STALL_S from 1.5 s in; the
    parsed JSON."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        p = subprocess.Popen([WEFT_BIN, "bench"] + [str(a) for a in args] +
                             ["--json", f.name, url(weft)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.5)
            weft.signal(signal.SIGSTOP)
            try:
                time.sleep(STALL_S)
            finally:
                weft.signal(signal.SIGCONT)
            stdout, stderr = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, stderr
        return json.loads(open(f.name).read())


def test_open_loop_sees_a_stall_closed_loop_hides(weft_factory):
    weft = weft_factory("--workers", "1")
    # 200/s for 4 s with room for every request scheduled during the stall (200 of them), so
    # none is dropped: a quarter of all requests wait, up to the whole second, and the p99 is
    # the stall. Only the 8 requests due in the stall's first 40 ms wait 960 ms or more.
    o = run_with_stall(weft, ["open", "--rps", 200, "-d", 4, "--concurrency", 400])
    assert o["requests"] == 800 and o["dropped"] == 0 and o["errors_total"] == 0, o
    lat, unc = o["latency_ms"], o["latency_uncorrected_ms"]
    assert lat["p99"] >= 0.9 * STALL_S * 1000, o
    assert lat["max"] >= 0.95 * STALL_S * 1000, o
    assert lat["p90"] >= 0.5 * STALL_S * 1000, o
    # Each request counts from its scheduled start: never less than from its actual send.
    assert unc["p99"] <= lat["p99"] and unc["max"] <= lat["max"], o

    # The same server and stall under a closed loop: each of the 10 connections waits once, so
    # the stall is 10 samples among thousands and vanishes from the p99; only the max shows it.
    c = run_with_stall(weft, ["closed", "-c", 10, "-d", 4, "--co-correct"])
    assert c["requests"] > 2000 and c["errors_total"] == 0, c
    assert c["latency_ms"]["max"] >= 0.9 * STALL_S * 1000, c
    assert c["latency_ms"]["p99"] < 0.25 * STALL_S * 1000, c
    assert c["latency_ms"]["p99"] < lat["p99"] / 4, (c, o)

    # --co-correct on the same run, as wrk does: with E = run time x connections / requests
    # (under 20 ms here), each stalled answer adds the ~1 s / E requests its connection would
    # have sent, thousands of samples spread over the stall, so the p99 shows it again.
    e = c["co_interval_ms"]
    assert abs(e - 1000 * c["duration_s"] * 10 / c["requests"]) <= 0.01 * e + 0.001, c
    assert e < 20 and c["co_added"] >= 10 * (0.9 * STALL_S * 1000 / e - 2), c
    co = c["latency_co_corrected_ms"]
    assert co["p99"] >= 0.5 * STALL_S * 1000, c
    assert co["max"] == c["latency_ms"]["max"], c
    # the added samples lie above E: the middle moves up, but stays with the fast answers
    assert c["latency_ms"]["p50"] <= co["p50"] < 0.1 * STALL_S * 1000, c


# ---- against nginx ----

def find_nginx():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


@pytest.fixture
def nginx(tmp_path):
    """nginx (one worker) on a free port of 127.0.0.1 answering GET / with a fixed 200, its
    access log in tmp_path: (port, path of the access log)."""
    binary = find_nginx()
    if not binary:
        pytest.skip("nginx not installed (./scripts/deps.sh test installs nginx-light)")
    d = tmp_path / "nginx"
    d.mkdir()
    log = d / "access.log"
    for attempt in range(3):
        port = free_port()
        conf = d / "nginx.conf"
        conf.write_text("\n".join([
            "worker_processes 1;",
            f"pid {d}/nginx.pid;",
            f"error_log {d}/error.log warn;",
            "events { worker_connections 1024; }",
            "http {",
            f"    access_log {log};",
            f"    client_body_temp_path {d}/body;",
            f"    proxy_temp_path {d}/proxy;",
            f"    fastcgi_temp_path {d}/fastcgi;",
            f"    uwsgi_temp_path {d}/uwsgi;",
            f"    scgi_temp_path {d}/scgi;",
            f"    server {{ listen 127.0.0.1:{port}; "
            'location = / { return 200 "Hello, World!"; } }',
            "}", ""]))
        proc = subprocess.Popen([binary, "-p", str(d), "-e", str(d / "error.log"), "-c",
                                 str(conf), "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def accepting():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                return False

        if wait_for(lambda: accepting() or proc.poll() is not None, 10) and proc.poll() is None:
            break
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    else:
        pytest.fail("nginx did not start: " + (d / "error.log").read_text()
                    if (d / "error.log").exists() else "nginx did not start")
    # The probes above are in the log as connections without requests: nothing is logged.
    try:
        yield port, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def log_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def test_closed_count_matches_nginx_access_log(nginx):
    port, log = nginx
    before = log_lines(log)
    p = bench("closed", "-c", 10, "-n", 1000, f"http://127.0.0.1:{port}/")
    assert p.returncode == 0, p.stderr
    assert re.search(r"^requests\s+1000$", p.stdout, re.M), p.stdout
    assert re.search(r"^status\s+200: 1000$", p.stdout, re.M), p.stdout
    # nginx logs a request just after sending its response: wait for the count to arrive,
    # then make sure nothing more does.
    wait_for(lambda: log_lines(log) - before >= 1000, 5)
    time.sleep(0.2)
    assert log_lines(log) - before == 1000
