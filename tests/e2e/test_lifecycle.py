"""End-to-end tests of weft's life cycle: graceful shutdown, connection limits, bad flags and
config files."""
import os
import re
import signal
import socket
import subprocess
import time

from conftest import (WEFT_BIN, RawHTTP, build_request, connect, echo_roundtrip, http_get_raw,
                      metric, wait_closed, wait_metric)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run_weft(*args, timeout=10):
    """Runs weft to completion. Services default to ephemeral ports so that a weft that wrongly
    starts serving binds nothing fixed; the timeout kills it."""
    try:
        p = subprocess.run([WEFT_BIN] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"weft {' '.join(args)} still running after {timeout}s "
                             f"(stdout {e.stdout!r}, stderr {e.stderr!r})")
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


EPHEMERAL = ["--http", "127.0.0.1:0", "--echo", "127.0.0.1:0", "--chat", "off",
             "--balancer", "off", "--admin", "127.0.0.1:0"]


# ---------------------------------------------------------------------------------------------
# Graceful shutdown

def test_sigterm_drains_100_connections(weft_factory):
    w = weft_factory("--shutdown-timeout", "5")
    w.stop_timeout = 8
    http, echo, admin = w.addr("http"), w.addr("echo"), w.addr("admin")

    idle_http = []
    idle_echo = []
    sleepers = []
    try:
        for _ in range(45):
            c = RawHTTP(http)
            r = c.request("GET", "/")
            assert r.status == 200 and r.header("connection", "").lower() != "close"
            idle_http.append(c)
        for i in range(45):
            s = connect(echo)
            msg = f"idle {i}".encode()
            assert echo_roundtrip(echo, msg, sock=s) == msg
            idle_echo.append(s)
        t_sleep = time.monotonic()
        for _ in range(10):
            c = RawHTTP(http)
            c.send(build_request("GET", "/sleep?ms=1500"))
            sleepers.append(c)
        assert len(idle_http) + len(idle_echo) + len(sleepers) == 100

        # Wait until every /sleep request is being handled (all 100 connections open).
        deadline = time.monotonic() + 3
        while True:
            m = w.metrics()
            active = (metric(m, "weft_connections_active", 0, service="http") +
                      metric(m, "weft_connections_active", 0, service="echo"))
            if active == 100 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert active == 100, f"{active} connections active before SIGTERM, want 100"
        time.sleep(0.1)
        assert time.monotonic() - t_sleep < 1.2, "set-up too slow for the test's timing"

        # A health checker's keep-alive connection, opened before the signal.
        checker = RawHTTP(admin)
        assert checker.request("GET", "/health").status == 200

        t_term = time.monotonic()
        w.signal(signal.SIGTERM)

        # While draining, /health on the admin port answers 503: on the open connection and on
        # a new one.
        time.sleep(0.05)
        r = checker.request("GET", "/health", timeout=2)
        assert r.status == 503, f"/health while draining: {r.status} {r.body!r}"
        s, _, b = http_get_raw(admin, "/health", timeout=2)
        assert s == 503, f"/health (new connection) while draining: {s} {b!r}"
        checker.close()
        assert time.monotonic() - t_sleep < 1.4, "the /health checks came too late"
        assert w.alive(), "weft exited before the in-flight /sleep requests were answered"

        # Idle connections are closed while the drain waits for the sleepers.
        for kind, socks in (("HTTP keep-alive", [c.sock for c in idle_http]),
                            ("echo", idle_echo)):
            for i, s in enumerate(socks):
                left = max(0.05, t_term + 1.0 - time.monotonic())
                how, data = wait_closed(s, timeout=left)
                assert how in ("eof", "reset"), (
                    f"idle {kind} connection #{i} still open 1 s after SIGTERM")
                assert data == b"", f"idle {kind} connection #{i} got {data!r} before close"
                s.close()   # no lingering on our side: weft may wait for our FIN

        # In-flight requests get their answer, with Connection: close, then EOF.
        for i, c in enumerate(sleepers):
            r = c.read_response(timeout=5)
            assert r.status == 200, f"in-flight /sleep #{i}: {r.status} {r.body!r}"
            assert r.header("connection", "").lower() == "close", (
                f"in-flight /sleep #{i} answered without Connection: close: {r.headers}")
            how, data = wait_closed(c.sock, timeout=2)
            assert how == "eof" and data == b"", (how, data)
            c.close()
        t_answered = time.monotonic() - t_sleep
        assert t_answered >= 1.45, f"/sleep?ms=1500 answered after {t_answered:.2f} s"

        status = w.wait(timeout=max(0.1, t_term + 5.5 - time.monotonic()))
        assert status is not None, "weft still running 5.5 s after SIGTERM (shutdown timeout 5)"
        assert status == 0, f"weft exited {status} after a graceful drain"
        elapsed = time.monotonic() - t_term
        assert elapsed < 3.0, (f"weft took {elapsed:.2f} s after SIGTERM to exit although the "
                               f"last request was answered {t_answered:.2f} s after it began "
                               f"and every client had closed")

        # No new connections once drained.
        try:
            s = socket.create_connection(http, timeout=1)
            s.close()
            raise AssertionError("the http port still accepts after exit")
        except OSError:
            pass
    finally:
        for c in idle_http + sleepers:
            c.close()
        for s in idle_echo:
            s.close()


def test_sigterm_stops_accepting(weft_factory):
    """After SIGTERM, new connections to http and echo are refused (or closed at once)."""
    w = weft_factory("--shutdown-timeout", "5")
    http, echo = w.addr("http"), w.addr("echo")
    sleeper = RawHTTP(http)
    sleeper.send(build_request("GET", "/sleep?ms=1000"))
    time.sleep(0.2)
    w.signal(signal.SIGTERM)
    time.sleep(0.2)
    assert w.alive()
    for name, addr in (("http", http), ("echo", echo)):
        try:
            s = socket.create_connection(addr, timeout=1)
        except OSError:
            continue
        try:
            if name == "http":
                s.sendall(build_request("GET", "/"))
            else:
                s.sendall(b"hello")
            how, data = wait_closed(s, timeout=2)
            assert how in ("eof", "reset"), f"{name}: a new connection during drain hangs"
            if name == "http":
                assert data == b"" or data.startswith(b"HTTP/1.1 503"), data[:100]
            else:
                assert data == b"", f"echo served {data!r} during drain"
        finally:
            s.close()
    r = sleeper.read_response(timeout=3)
    assert r.status == 200
    sleeper.close()
    assert w.wait(5) == 0


def test_second_sigterm_exits_at_once(weft_factory):
    w = weft_factory("--shutdown-timeout", "10")
    w.expected_status = None   # any status: the second signal cuts the drain short
    c = RawHTTP(w.addr("http"))
    try:
        c.send(build_request("GET", "/sleep?ms=8000"))
        time.sleep(0.3)
        w.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert w.alive(), "weft exited during the drain although a request was in flight"
        t = time.monotonic()
        w.signal(signal.SIGTERM)
        status = w.wait(timeout=1.0)
        assert status is not None, "weft still running 1 s after a second SIGTERM"
        assert time.monotonic() - t < 1.0
    finally:
        c.close()


def test_sigint_drains_too(weft_factory):
    w = weft_factory()
    assert http_get_raw(w.addr("http"), "/")[0] == 200
    w.signal(signal.SIGINT)
    assert w.wait(5) == 0


# ---------------------------------------------------------------------------------------------
# Connection limits

def test_max_connections_echo(weft_factory):
    w = weft_factory("--max-connections", "5")
    echo = w.addr("echo")
    socks = []
    try:
        for i in range(5):
            s = connect(echo)
            assert echo_roundtrip(echo, b"hi %d" % i, sock=s) == b"hi %d" % i
            socks.append(s)
        sixth = connect(echo)
        try:
            try:
                sixth.sendall(b"over the limit")
            except OSError:
                pass
            how, data = wait_closed(sixth, timeout=3)
            assert how in ("eof", "reset"), "the 6th echo connection was not closed"
            assert data == b"", f"the 6th echo connection was served: {data!r}"
        finally:
            sixth.close()
        rejected = wait_metric(w, "weft_connections_rejected_total", 1, service="echo",
                               reason="max_connections")
        assert rejected == 1, f"rejected_total{{echo,max_connections}} = {rejected}"
        assert metric(w.metrics(), "weft_connections_active", service="echo") == 5
        # The five are still served.
        for i, s in enumerate(socks):
            assert echo_roundtrip(echo, b"still %d" % i, sock=s) == b"still %d" % i
        # Closing one makes room.
        socks.pop().close()
        deadline = time.monotonic() + 3
        while True:
            s = connect(echo)
            try:
                got = echo_roundtrip(echo, b"room again", sock=s, timeout=1)
            except OSError:
                got = b""
            if got == b"room again":
                socks.append(s)
                break
            s.close()
            assert time.monotonic() < deadline, "no new echo connection after closing one"
            time.sleep(0.1)
    finally:
        for s in socks:
            s.close()


def test_max_connections_http(weft_factory):
    w = weft_factory("--max-connections", "5")
    http = w.addr("http")
    conns = []
    try:
        for _ in range(5):
            c = RawHTTP(http)
            assert c.request("GET", "/").status == 200
            conns.append(c)
        sixth = RawHTTP(http)
        try:
            try:
                sixth.send(build_request("GET", "/"))
            except OSError:
                pass
            r = sixth.read_response(timeout=3)
            assert r.status == 503, f"the 6th HTTP connection got {r.status} {r.body!r}"
            how, _ = wait_closed(sixth.sock, timeout=3)
            assert how in ("eof", "reset"), "the 6th HTTP connection was not closed after 503"
        finally:
            sixth.close()
        rejected = wait_metric(w, "weft_connections_rejected_total", 1, service="http",
                               reason="max_connections")
        assert rejected == 1, f"rejected_total{{http,max_connections}} = {rejected}"
        for c in conns:
            assert c.request("GET", "/").status == 200
        conns.pop().close()
        deadline = time.monotonic() + 3
        while True:
            c = RawHTTP(http)
            try:
                r = c.request("GET", "/", timeout=1)
            except (OSError, EOFError, TimeoutError):
                r = None
            if r is not None and r.status == 200:
                conns.append(c)
                break
            c.close()
            assert time.monotonic() < deadline, (
                f"no new HTTP connection after closing one (last: {r and r.status})")
            time.sleep(0.1)
    finally:
        for c in conns:
            c.close()


# ---------------------------------------------------------------------------------------------
# Flags, config files and commands

def one_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return len(lines) == 1


def test_bad_flag_value_exits_2():
    rc, out, err = run_weft("serve", *EPHEMERAL, "--workers", "abc")
    assert rc == 2, f"exit {rc}, stderr {err!r}"
    assert "--workers" in err, f"message does not name --workers: {err!r}"
    assert one_line(err), f"not a one-line message: {err!r}"


def test_unknown_flag_exits_2():
    rc, out, err = run_weft("serve", *EPHEMERAL, "--bogus")
    assert rc == 2, f"exit {rc}, stderr {err!r}"
    assert "--bogus" in err, f"message does not name --bogus: {err!r}"
    assert one_line(err), f"not a one-line message: {err!r}"


def test_missing_flag_value_exits_2():
    rc, out, err = run_weft("serve", *EPHEMERAL, "--workers")
    assert rc == 2, f"exit {rc}, stderr {err!r}"
    assert "--workers" in err


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


GOOD_CONF = """# a good config
http = "127.0.0.1:0";
echo = "127.0.0.1:0";
chat = "off";
balancer = "off";
admin = "127.0.0.1:0";
workers = 2;
max_connections = 100;
shutdown_timeout = "2s";
"""


def test_config_file_bad_workers(tmp_path):
    path = write(tmp_path, "bad.conf", GOOD_CONF.replace("workers = 2;", "workers = 0;"))
    line = GOOD_CONF.splitlines().index("workers = 2;") + 1
    rc, out, err = run_weft("serve", "--config", path, *EPHEMERAL)
    assert rc != 0, f"weft serve accepted workers = 0 (stdout {out!r})"
    assert "workers" in err, f"message does not name the key: {err!r}"
    assert f"{path}:{line}" in err, f"message does not give {path}:{line}: {err!r}"
    assert "listening" not in out


def test_config_file_bad_max_connections(tmp_path):
    text = GOOD_CONF.replace("max_connections = 100;", 'max_connections = "x";')
    path = write(tmp_path, "bad.conf", text)
    line = text.splitlines().index('max_connections = "x";') + 1
    rc, out, err = run_weft("serve", "--config", path, *EPHEMERAL)
    assert rc != 0, f"weft serve accepted max_connections = \"x\" (stdout {out!r})"
    assert "max_connections" in err, f"message does not name the key: {err!r}"
    assert f"{path}:{line}" in err, f"message does not give {path}:{line}: {err!r}"


def test_config_file_values_apply(weft_factory, tmp_path):
    """A good config file is read: its max_connections applies, and flags override it."""
    path = write(tmp_path, "good.conf", GOOD_CONF.replace("max_connections = 100;",
                                                          "max_connections = 2;"))
    w = weft_factory("--config", path, defaults=False, services=("http", "echo", "admin"))
    assert set(w.addrs) == {"http", "echo", "admin"}
    echo = w.addr("echo")
    a, b = connect(echo), connect(echo)
    try:
        assert echo_roundtrip(echo, b"a", sock=a) == b"a"
        assert echo_roundtrip(echo, b"b", sock=b) == b"b"
        c = connect(echo)
        how, _ = wait_closed(c, timeout=3)
        c.close()
        assert how in ("eof", "reset"), "max_connections = 2 from the file did not apply"
    finally:
        a.close()
        b.close()
    w.check_stop()

    w2 = weft_factory("--config", path, "--max-connections", "3", defaults=False,
                      services=("http", "echo", "admin"))
    echo = w2.addr("echo")
    socks = [connect(echo) for _ in range(3)]
    try:
        for i, s in enumerate(socks):
            assert echo_roundtrip(echo, b"%d" % i, sock=s) == b"%d" % i, (
                "--max-connections 3 after --config did not override the file's 2")
    finally:
        for s in socks:
            s.close()


def test_config_check_good(tmp_path):
    path = write(tmp_path, "good.conf", GOOD_CONF)
    rc, out, err = run_weft("config", "check", path)
    assert rc == 0, f"exit {rc}: {err!r}"


def test_config_check_repo_good_file():
    path = os.path.join(REPO, "tests", "data", "good.conf")
    if not os.path.exists(path):
        return
    rc, out, err = run_weft("config", "check", path)
    assert rc == 0, f"exit {rc}: {err!r}"


def test_config_check_bad(tmp_path):
    text = GOOD_CONF.replace("workers = 2;", "workers = 0;").replace(
        "max_connections = 100;", 'max_connections = "x";')
    path = write(tmp_path, "bad.conf", text)
    lines = text.splitlines()
    want = {lines.index("workers = 0;") + 1: "workers",
            lines.index('max_connections = "x";') + 1: "max_connections"}
    rc, out, err = run_weft("config", "check", path)
    assert rc == 1, f"exit {rc}: {err!r}"
    reported = {}
    for l in err.splitlines():
        m = re.match(re.escape(path) + r":(\d+): (.*)", l)
        assert m, f"not a FILE:LINE: message: {l!r}"
        reported[int(m.group(1))] = m.group(2)
    assert set(reported) == set(want), f"lines reported {sorted(reported)}, want {sorted(want)}"
    for line, key in want.items():
        assert key in reported[line], f"line {line}: {reported[line]!r} does not name {key}"


def test_config_check_repo_bad_file():
    """tests/data/bad.conf marks each bad line with '# error:'; exactly those are reported."""
    path = os.path.join(REPO, "tests", "data", "bad.conf")
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.read().splitlines()
    want = {i + 1 for i, l in enumerate(lines) if "# error:" in l}
    rc, out, err = run_weft("config", "check", path)
    assert rc == 1, f"exit {rc}: {err!r}"
    got = set()
    for l in err.splitlines():
        m = re.match(re.escape(path) + r":(\d+): ", l)
        assert m, f"not a FILE:LINE: message: {l!r}"
        got.add(int(m.group(1)))
    assert got == want, f"lines reported {sorted(got)}, marked {sorted(want)}\n{err}"


def test_config_check_missing_file(tmp_path):
    rc, out, err = run_weft("config", "check", str(tmp_path / "nope.conf"))
    assert rc != 0
    assert "nope.conf" in err


def test_unknown_command_exits_2():
    rc, out, err = run_weft("frobnicate")
    assert rc == 2, f"exit {rc}"
    assert "frobnicate" in err
    assert one_line(err), f"not a one-line message: {err!r}"


def test_version():
    rc, out, err = run_weft("--version")
    assert rc == 0
    assert out.startswith("weft "), out
    assert re.match(r"weft \d+\.\d+", out), out
