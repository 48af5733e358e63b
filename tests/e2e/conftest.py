"""End-to-end test harness for weft: starts `weft serve` as a real process on ephemeral ports.

Helpers here are importable from the test modules (`from conftest import ...`): pytest puts this
directory on sys.path (the default "prepend" import mode; there is no __init__.py here).

    def test_x(weft):                      # one weft with http, echo and admin, --workers 2
        port = weft.port("http")
    def test_y(weft_factory):              # weft with chosen flags
        w = weft_factory("--max-connections", "5")

Teardown sends SIGTERM, waits (SIGKILL after a timeout, only to the pid it started) and fails
the test when weft exited non-zero or wrote a sanitizer report ("runtime error",
"AddressSanitizer", ...) to stderr; stderr is kept in a temp file and shown on failure.
"""
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WEFT_BIN = os.environ.get("WEFT_BIN", os.path.join(REPO, "build", "weft"))

SERVICES = ("http", "echo", "chat", "balancer", "admin")
# Services that are on unless turned off; chat and balancer are off by default in these tests.
DEFAULT_FLAGS = ("--http", "127.0.0.1:0", "--echo", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                 "--chat", "off", "--balancer", "off", "--workers", "2")
SANITIZER_MARKERS = ("runtime error", "AddressSanitizer", "LeakSanitizer", "ThreadSanitizer",
                     "MemorySanitizer", "UndefinedBehaviorSanitizer")
START_TIMEOUT = 10.0
# WEFT_TEST_IO=uring (or epoll) runs every weft these tests start with that I/O backend.
TEST_IO = os.environ.get("WEFT_TEST_IO", "")


class WeftError(AssertionError):
    pass


class Weft:
    """One `weft serve` process. Use weft_factory (or the weft fixture) to make one."""

    def __init__(self, *flags, bin_path=None, defaults=True, env=None, services=None):
        self.bin = bin_path or WEFT_BIN
        self.args = [self.bin, "serve"] + (list(DEFAULT_FLAGS) if defaults else []) + \
            [str(f) for f in flags]
        if TEST_IO and "--io" not in self.args:
            self.args += ["--io", TEST_IO]
        self.env = env
        self.services = services  # the services expected to listen; None: from the flags
        self.addrs = {}          # service -> (host, port)
        self.proc = None
        self.stdout_lines = []   # every stdout line, the `listening` ones included
        self.expected_status = 0  # None: any exit status is fine
        self.stop_timeout = None  # default: shutdown timeout + 5 s
        self._stderr = tempfile.NamedTemporaryFile(prefix="weft-stderr-", suffix=".log",
                                                   delete=False)
        self._reader = None
        self._stopped = False

    # ---- start ----

    def expected_services(self):
        """The services that should print `listening`, from the flags (the last --SVC wins; a
        --config file is not read: pass services= then)."""
        on = {s: s in ("http", "echo", "chat", "balancer", "admin") for s in SERVICES}
        a = self.args
        for i, arg in enumerate(a):
            for s in SERVICES:
                if arg == "--" + s and i + 1 < len(a):
                    on[s] = a[i + 1] != "off"
                elif arg.startswith("--" + s + "="):
                    on[s] = arg.split("=", 1)[1] != "off"
        return [s for s in SERVICES if on[s]]

    def start(self, timeout=START_TIMEOUT):
        if not os.access(self.bin, os.X_OK):
            raise WeftError(f"weft binary not found at {self.bin} (set WEFT_BIN or build it)")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=self.env, close_fds=True)
        want = set(self.services or self.expected_services())
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        os.set_blocking(fd, False)
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while set(self.addrs) != want:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._fail_start(f"timed out after {timeout}s waiting for `listening` lines "
                                     f"for {sorted(want - set(self.addrs))}")
                if not sel.select(min(left, 0.2)):
                    if self.proc.poll() is not None:
                        self._fail_start(f"weft exited with {self.proc.returncode} at start")
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    self.proc.wait(timeout=5)
                    self._fail_start(f"weft closed stdout (exit {self.proc.returncode}) before "
                                     f"all `listening` lines")
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.decode("utf-8", "replace")
                    self.stdout_lines.append(text)
                    m = re.fullmatch(r"listening (\S+) (\S+):(\d+)", text)
                    if m:
                        host = m.group(2)
                        if host.startswith("[") and host.endswith("]"):
                            host = host[1:-1]
                        port = int(m.group(3))
                        if port == 0:
                            self._fail_start(f"`{text}`: port 0 printed, not the bound port")
                        self.addrs[m.group(1)] = (host, port)
        finally:
            sel.close()
        os.set_blocking(fd, True)
        # Keep draining stdout (an access log may go there) so weft never blocks on the pipe.
        self._reader = threading.Thread(target=self._read_rest, args=(buf,), daemon=True)
        self._reader.start()
        return self

    def _read_rest(self, pending):
        data = pending
        while True:
            try:
                chunk = self.proc.stdout.read1(65536)
            except (OSError, ValueError):
                break
            if not chunk:
                break
            data += chunk
            while b"\n" in data:
                line, data = data.split(b"\n", 1)
                self.stdout_lines.append(line.decode("utf-8", "replace"))
        if data:
            self.stdout_lines.append(data.decode("utf-8", "replace"))

    def _fail_start(self, msg):
        self._kill()
        self._stopped = True   # reported here; teardown has nothing to add
        raise WeftError(f"{msg}\ncommand: {' '.join(self.args)}\nstdout: {self.stdout_lines}\n"
                        f"stderr:\n{self.stderr()}")

    # ---- accessors ----

    @property
    def pid(self):
        return self.proc.pid

    def port(self, service):
        return self.addrs[service][1]

    def addr(self, service):
        return self.addrs[service]

    def stderr(self):
        try:
            with open(self._stderr.name, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss(self):
        """weft's VmRSS in bytes."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise WeftError("no VmRSS in /proc/PID/status")

    def metrics(self, timeout=5.0):
        return scrape_metrics(self.addr("admin"), timeout=timeout)

    def signal(self, sig=signal.SIGTERM):
        if self.alive():
            os.kill(self.pid, sig)

    # ---- stop ----

    def wait(self, timeout):
        """Waits for exit; returns the exit status or None on timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def stop(self, timeout=None):
        """SIGTERM, wait, SIGKILL after timeout. Returns a list of problems (empty: all fine)."""
        if self._stopped or self.proc is None:
            return []
        self._stopped = True
        problems = []
        if timeout is None:
            timeout = self.stop_timeout if self.stop_timeout is not None else 15.0
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            if self.wait(timeout) is None:
                problems.append(f"weft (pid {self.pid}) did not exit within {timeout}s of "
                                f"SIGTERM; killed with SIGKILL")
                self._kill()
        if self._reader is not None:
            self._reader.join(timeout=5)
        rc = self.proc.returncode
        if self.expected_status is not None and rc != self.expected_status:
            how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
            problems.append(f"weft {how}, expected exit status {self.expected_status}")
        err = self.stderr()
        for marker in SANITIZER_MARKERS:
            if marker in err:
                problems.append(f"weft's stderr contains {marker!r}")
                break
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        if problems:
            return problems + [f"command: {' '.join(self.args)}", f"stderr:\n{err}"]
        try:
            os.unlink(self._stderr.name)
        except OSError:
            pass
        return []

    def check_stop(self, timeout=None):
        problems = self.stop(timeout)
        if problems:
            raise WeftError("\n".join(problems))


@pytest.fixture
def weft_factory():
    """weft_factory(*flags, defaults=True, start=True, services=None) -> a started Weft,
    stopped at teardown. defaults=False leaves out DEFAULT_FLAGS; services lists the services
    expected to print `listening` when the flags alone do not tell (e.g. with --config)."""
    started = []

    def make(*flags, defaults=True, start=True, env=None, services=None):
        w = Weft(*flags, defaults=defaults, env=env, services=services)
        started.append(w)
        if start:
            w.start()
        return w

    yield make
    problems = []
    for w in started:
        problems += w.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def weft(weft_factory):
    """weft with http, echo and admin on ephemeral ports, chat and balancer off, 2 workers."""
    return weft_factory()


# ---------------------------------------------------------------------------------------------
# Metrics

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def _unescape(v):
    return v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def parse_labels(s):
    labels = {}
    pos = 0
    s = s.strip()
    while pos < len(s):
        m = _LABEL_RE.match(s, pos)
        if not m:
            raise ValueError(f"bad label set {{{s}}}")
        labels[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
    return labels


def parse_prometheus(text):
    """Prometheus text -> {(name, frozenset(labels.items())): float}. Raises ValueError on a
    malformed line."""
    out = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ValueError(f"line {lineno}: not a Prometheus sample: {line!r}")
        labels = parse_labels(m.group(3)) if m.group(3) else {}
        v = m.group(4)
        value = float(v.replace("Inf", "inf")) if "Inf" in v else float(v)
        key = (m.group(1), frozenset(labels.items()))
        if key in out:
            raise ValueError(f"line {lineno}: duplicate sample {line!r}")
        out[key] = value
    return out


def metric_key(name, **labels):
    return (name, frozenset(labels.items()))


def metric(d, name, default=None, **labels):
    """The value of one sample, or default when absent."""
    return d.get(metric_key(name, **labels), default)


def metrics_until(weft, cond, timeout=2.0, interval=0.05):
    """Scrapes weft's /metrics until cond(metrics) is true or timeout passes; returns the last
    scrape. A worker adds to its counters just after the system call, so a client can see its
    bytes a moment before they are counted: poll instead of scraping once."""
    deadline = time.monotonic() + timeout
    while True:
        m = weft.metrics()
        if cond(m) or time.monotonic() > deadline:
            return m
        time.sleep(interval)


def wait_metric(weft, name, want, timeout=2.0, **labels):
    """Polls one sample until it equals want or timeout passes; returns its last value."""
    m = metrics_until(weft, lambda m: metric(m, name, **labels) == want, timeout)
    return metric(m, name, **labels)


def http_get_raw(addr, path, timeout=5.0, method="GET", body=None, headers=None):
    """One HTTP/1.1 request on a new connection -> (status, headers dict (lower-case), body)."""
    import http.client
    conn = http.client.HTTPConnection(addr[0], addr[1], timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def scrape_metrics(addr, timeout=5.0):
    status, headers, body = http_get_raw(addr, "/metrics", timeout=timeout)
    if status != 200:
        raise WeftError(f"/metrics answered {status}: {body[:200]!r}")
    return parse_prometheus(body.decode("utf-8"))


def api_stats(addr, timeout=5.0):
    status, headers, body = http_get_raw(addr, "/api/stats", timeout=timeout)
    if status != 200:
        raise WeftError(f"/api/stats answered {status}: {body[:200]!r}")
    return json.loads(body)


# ---------------------------------------------------------------------------------------------
# Raw sockets

def connect(addr, timeout=5.0):
    s = socket.create_connection(addr, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(sock, n, timeout=10.0):
    """Reads exactly n bytes (or what came before EOF) within timeout."""
    deadline = time.monotonic() + timeout
    out = bytearray()
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(n - len(out), 1 << 20))
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


def wait_closed(sock, timeout=5.0):
    """Reads until EOF or reset. Returns ('eof'|'reset'|'timeout', bytes read before)."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", bytes(data)
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return "timeout", bytes(data)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return "reset", bytes(data)
        if not chunk:
            return "eof", bytes(data)
        data += chunk


def echo_roundtrip(addr, payload, timeout=20.0, shutdown_after=False, sock=None):
    """Sends payload to an echo server while reading; returns what came back (up to
    len(payload) bytes, or until EOF when shutdown_after) within timeout."""
    own = sock is None
    s = sock or connect(addr, timeout=timeout)
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    view = memoryview(payload)
    sent = 0
    got = bytearray()
    eof = False
    deadline = time.monotonic() + timeout
    try:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if payload else 0)
        sel.register(s, events)
        if not payload and shutdown_after:
            s.shutdown(socket.SHUT_WR)
        while True:
            if not shutdown_after and len(got) >= len(payload):
                break
            if eof:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, ev in sel.select(min(left, 0.5)):
                if ev & selectors.EVENT_READ:
                    try:
                        chunk = s.recv(1 << 20)
                    except BlockingIOError:
                        chunk = None
                    except ConnectionResetError:
                        chunk = b""
                    if chunk == b"":
                        eof = True
                    elif chunk:
                        got += chunk
                if ev & selectors.EVENT_WRITE and sent < len(payload):
                    try:
                        sent += s.send(view[sent:sent + (1 << 20)])
                    except BlockingIOError:
                        pass
                    if sent == len(payload):
                        if shutdown_after:
                            s.shutdown(socket.SHUT_WR)
                        sel.modify(s, selectors.EVENT_READ)
        return bytes(got)
    finally:
        sel.close()
        if own:
            s.close()
        else:
            s.setblocking(True)


# ---------------------------------------------------------------------------------------------
# Raw HTTP/1.1 (for pipelining and exact framing)

class HTTPResponse:
    def __init__(self, status, reason, headers, body, version):
        self.status = status
        self.reason = reason
        self.headers = headers    # list of (name, value)
        self.body = body
        self.version = version

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def __repr__(self):
        return f"<HTTP {self.status} {self.headers} {self.body[:80]!r}>"


class RawHTTP:
    """An HTTP/1.1 client on one socket that reads responses one by one (Content-Length or
    chunked framing)."""

    def __init__(self, addr, timeout=10.0):
        self.sock = connect(addr, timeout=timeout)
        self.buf = bytearray()
        self.timeout = timeout

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out reading a response")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("timed out reading a response")
        if not chunk:
            raise EOFError(f"connection closed; unparsed: {bytes(self.buf[:200])!r}")
        self.buf += chunk

    def _line(self, deadline):
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        i = self.buf.index(b"\r\n")
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def _exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_response(self, head=False, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        status_line = self._line(deadline).decode("latin-1")
        m = re.fullmatch(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?", status_line)
        if not m:
            raise ValueError(f"bad status line {status_line!r}")
        headers = []
        while True:
            line = self._line(deadline).decode("latin-1")
            if not line:
                break
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        resp = HTTPResponse(int(m.group(2)), m.group(3) or "", headers, b"", m.group(1))
        status = resp.status
        if head or status in (204, 304) or 100 <= status < 200:
            return resp
        te = resp.header("transfer-encoding")
        if te and "chunked" in te.lower():
            body = bytearray()
            while True:
                size = int(self._line(deadline).split(b";")[0], 16)
                if size == 0:
                    while self._line(deadline):
                        pass
                    break
                body += self._exact(size, deadline)
                self._line(deadline)
            resp.body = bytes(body)
        elif resp.header("content-length") is not None:
            resp.body = self._exact(int(resp.header("content-length")), deadline)
        else:
            # Read to EOF.
            body = bytearray(self.buf)
            self.buf.clear()
            while True:
                try:
                    self._fill(deadline)
                except EOFError:
                    break
                body += self.buf
                self.buf.clear()
            resp.body = bytes(body)
        return resp

    def request(self, method, path, body=b"", headers=None, timeout=None):
        self.send(build_request(method, path, body, headers))
        return self.read_response(head=(method == "HEAD"), timeout=timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def build_request(method, path, body=b"", headers=None, host="weft.test"):
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    hdrs = dict(headers or {})
    if body or method in ("POST", "PUT"):
        hdrs.setdefault("Content-Length", str(len(body)))
    for k, v in hdrs.items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ---- weft bench and ports ----

def bench(*args, timeout=60, env=None):
    """Runs `weft bench ARGS...` to completion; fails on any sanitizer report in its stderr."""
    p = subprocess.run([WEFT_BIN, "bench"] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout, env=env)
    for marker in SANITIZER_MARKERS:
        assert marker not in p.stderr, p.stderr
    return p


def http_url(weft, path="/"):
    """The http:// URL of weft's http service."""
    host, port = weft.addr("http")
    return f"http://{host}:{port}{path}"


def free_port():
    """A 127.0.0.1 port that was free a moment ago (for peers that cannot take port 0)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
