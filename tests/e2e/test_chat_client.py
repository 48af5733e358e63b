"""End-to-end tests of `weft chat URL`, the terminal chat client (SPEC: `weft chat URL`, "Chat
service"): clients run as processes with their stdin and stdout on pipes, against a real
`weft serve` with chat on, or against a small WebSocket server written here for what weft's
server never does (pings, a non-JSON message, close codes other than 1000 and 1001).

WEFT_CHAT_BIN overrides the program run as `PROGRAM chat URL` (default: conftest's WEFT_BIN)."""
import base64
import hashlib
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import WEFT_BIN

CHAT_BIN = os.environ.get("WEFT_CHAT_BIN", WEFT_BIN)
SLOW = 2 if os.environ.get("WEFT_SANITIZED") else 1
TIMEOUT = 10.0 * SLOW
MSG_RE = r"\[\d\d:\d\d:\d\d\] "


class ChatClient:
    """One `weft chat URL` process; its stdout lines are collected by a thread."""

    def __init__(self, url, env=None):
        self.proc = subprocess.Popen([CHAT_BIN, "chat", url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.lines = queue.Queue()
        self.seen = []
        self.stderr = b""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern, timeout=TIMEOUT):
        """Waits for a stdout line matching pattern (re.fullmatch); returns it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01)) if left > 0 else None
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no line matching {pattern!r} within {timeout}s; "
                                     f"stdout so far: {self.seen}; stderr: {self._err()!r}")
            self.seen.append(line)
            if re.fullmatch(pattern, line):
                return line

    def type(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self):
        self.proc.stdin.close()

    def wait(self, timeout=TIMEOUT):
        """Waits for the exit; returns the status (fails the test on a timeout)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"weft chat did not exit within {timeout}s; "
                                 f"stdout: {self.seen}")
        while True:   # the rest of stdout, to EOF
            try:
                line = self.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return rc

    def _err(self):
        if self.proc.poll() is not None and not self.stderr:
            self.stderr = self.proc.stderr.read()
        return self.stderr.decode("utf-8", "replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def chat_clients():
    """chat_clients(url) -> a started ChatClient, killed at teardown if still running."""
    started = []

    def make(url, env=None):
        c = ChatClient(url, env=env)
        started.append(c)
        return c

    yield make
    for c in started:
        c.kill()
        for f in (c.proc.stdin, c.proc.stdout, c.proc.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass


def chat_url(w, query):
    host, port = w.addr("chat")
    return f"ws://{host}:{port}/ws?{query}"


def run_chat(*args, timeout=TIMEOUT):
    return subprocess.run([CHAT_BIN, "chat", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# Against weft's chat service

def test_lines_typed_reach_the_other_client(weft_factory, chat_clients):
    w = weft_factory("--chat", "127.0.0.1:0")
    alice = chat_clients(chat_url(w, "room=r1&name=alice"))
    alice.expect(r"\* joined r1 as alice \(1 members\)")
    bob = chat_clients(chat_url(w, "room=r1&name=bob"))
    bob.expect(r"\* joined r1 as bob \(2 members\)")
    alice.expect(r"\* bob joined \(2 members\)")

    alice.type("hello bob")
    bob.expect(MSG_RE + r"alice: hello bob")
    alice.expect(MSG_RE + r"alice: hello bob")   # the sender gets its own message too
    bob.type('quotes " and \\ and tabs\tand ünicode')
    alice.expect(MSG_RE + re.escape('bob: quotes " and \\ and tabs\tand ünicode'))

    alice.type("/quit")
    assert alice.wait() == 0
    bob.expect(r"\* alice left \(1 members\)")
    bob.close_stdin()   # end of input closes like /quit
    assert bob.wait() == 0


def test_join_moves_to_another_room(weft_factory, chat_clients):
    w = weft_factory("--chat", "127.0.0.1:0")
    alice = chat_clients(chat_url(w, "room=r1&name=alice"))
    alice.expect(r"\* joined r1 as alice \(1 members\)")
    bob = chat_clients(chat_url(w, "room=r1&name=bob"))
    bob.expect(r"\* joined r1 as bob \(2 members\)")

    bob.type("/join r2")
    bob.expect(r"\* joined r2 as bob \(1 members\)")
    alice.expect(r"\* bob left \(1 members\)")
    alice.type("only for r1")
    alice.expect(MSG_RE + "alice: only for r1")
    bob.type("only for r2")
    bob.expect(MSG_RE + "bob: only for r2")

    alice.type("/join r2")
    alice.expect(r"\* joined r2 as alice \(2 members\)")
    bob.expect(r"\* alice joined \(2 members\)")
    alice.type("together again")
    bob.expect(MSG_RE + "alice: together again")

    bob.type("/quit")
    alice.type("/quit")
    assert bob.wait() == 0
    assert alice.wait() == 0
    assert not any("only for r1" in line for line in bob.seen), bob.seen
    assert not any("only for r2" in line for line in alice.seen), alice.seen


def test_server_shutdown_closes_with_1001(weft_factory, chat_clients):
    w = weft_factory("--chat", "127.0.0.1:0")
    c = chat_clients(chat_url(w, "name=zed"))
    c.expect(r"\* joined lobby as zed \(1 members\)")
    w.signal(signal.SIGTERM)
    c.expect(r"\* closed by server: 1001( .*)?")
    assert c.wait() == 0
    assert w.wait(15 * SLOW) == 0


def test_no_path_means_ws_and_refused_upgrade(weft_factory, chat_clients):
    w = weft_factory("--chat", "127.0.0.1:0")
    host, port = w.addr("chat")
    c = chat_clients(f"ws://{host}:{port}")
    c.expect(r"\* joined lobby as \S+ \(1 members\)")
    c.close_stdin()
    assert c.wait() == 0
    r = run_chat(f"ws://{host}:{port}/not-ws")
    assert r.returncode == 1, r
    assert re.fullmatch(r"weft chat: .*HTTP/1\.1 404.*\n", r.stderr), r.stderr


# ---------------------------------------------------------------------------------------------
# Usage and connection errors

@pytest.mark.parametrize("url", ["http://127.0.0.1:1/ws", "ws://", "ws://:80/ws", "ws://h:0/ws",
                                 "ws://h:65536/ws", "ws://h:x/ws", "ws://[::1/ws",
                                 "ws://h/a b", "ws://user@h/ws"])
def test_bad_url_exits_2(url):
    r = run_chat(url)
    assert r.returncode == 2, r
    assert r.stdout == "" and r.stderr.count("\n") == 1, r


def test_wss_and_usage_exit_2():
    r = run_chat("wss://127.0.0.1:1/ws")
    assert (r.returncode, r.stderr) == (2, "weft chat: wss is not supported yet\n")
    r = run_chat()
    assert r.returncode == 2 and r.stderr.startswith("usage: weft chat"), r
    r = run_chat("ws://127.0.0.1:1/ws", "extra")
    assert r.returncode == 2 and r.stderr.startswith("usage: weft chat"), r


def test_connection_refused_exits_1():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # nothing listens there now
    r = run_chat(f"ws://127.0.0.1:{port}/ws")
    assert r.returncode == 1, r
    assert r.stderr.startswith("weft chat: ") and r.stderr.count("\n") == 1, r


# ---------------------------------------------------------------------------------------------
# Against a scripted WebSocket server

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload):
    n = len(payload)
    head = bytes([0x80 | opcode])
    head += bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n)
    return head + payload


def read_frame(conn):
    """One client frame -> (opcode, unmasked payload, was_masked)."""
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError("client closed")
            buf += chunk
        return buf
    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    mask = exact(4) if b1 & 0x80 else b"\0\0\0\0"
    data = bytes(x ^ mask[i % 4] for i, x in enumerate(exact(n)))
    return b0 & 0x0F, data, bool(b1 & 0x80)


class ScriptedServer:
    """Accepts one connection, answers the handshake, then runs script(conn) in a thread."""

    def __init__(self, script):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.request = b""
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.thread.start()

    def _run(self, script):
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                while b"\r\n\r\n" not in self.request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        raise EOFError("no handshake")
                    self.request += chunk
                key = re.search(rb"(?i)\r\nsec-websocket-key: *(\S+)", self.request).group(1)
                accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                             b"\r\n\r\n")
                script(conn)
        except Exception as e:  # reported by join()
            self.error = e
        finally:
            self.sock.close()

    def join(self):
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "the scripted server did not finish"
        if self.error:
            raise self.error


def test_ping_raw_text_and_other_close_codes(chat_clients):
    got = {}

    def script(conn):
        conn.sendall(frame(0x9, b"are you there"))
        got["pong"] = read_frame(conn)
        conn.sendall(frame(0x1, b'{"type":"msg","room":"r","from":"zed","text":"hi\\u001b[2J",'
                                b'"ts":3723000000}'))
        conn.sendall(frame(0x1, b"not json at all"))
        conn.sendall(frame(0x1, b'{"type":"error","error":"unknown type"}'))
        conn.sendall(frame(0x1, b'{"type":"weird"}'))
        conn.sendall(frame(0x8, struct.pack("!H", 4000) + b"bye now"))
        got["close"] = read_frame(conn)

    srv = ScriptedServer(script)
    c = chat_clients(f"ws://127.0.0.1:{srv.port}/ws?room=r&name=me", env=dict(os.environ, TZ="UTC"))
    c.expect(r"\[01:02:03\] zed: hi\?\[2J")   # the escape does not reach the terminal
    c.expect(r"not json at all")
    c.expect(r"! error: unknown type")
    c.expect(re.escape('{"type":"weird"}'))
    c.expect(r"\* closed by server: 4000 bye now")
    assert c.wait() == 1
    srv.join()
    assert got["pong"] == (0xA, b"are you there", True)
    assert got["close"][0] == 0x8 and got["close"][2], got["close"]
    assert got["close"][1][:2] == struct.pack("!H", 4000)
    assert re.match(rb"GET /ws\?room=r&name=me HTTP/1\.1\r\n", srv.request), srv.request


def test_quit_waits_for_the_server_close(chat_clients):
    got = {}

    def script(conn):
        got["msg"] = read_frame(conn)
        got["close"] = read_frame(conn)
        time.sleep(0.3)   # the client keeps waiting for the answer
        conn.sendall(frame(0x8, struct.pack("!H", 1000)))

    srv = ScriptedServer(script)
    c = chat_clients(f"ws://127.0.0.1:{srv.port}")
    c.type("one line")
    c.type("/quit")
    t0 = time.monotonic()
    assert c.wait() == 0
    assert time.monotonic() - t0 >= 0.25
    srv.join()
    assert got["msg"] == (0x1, b'{"type":"msg","text":"one line"}', True)
    assert got["close"] == (0x8, struct.pack("!H", 1000), True)
    assert re.match(rb"GET /ws HTTP/1\.1\r\n", srv.request), srv.request
    assert not any("closed by server" in line for line in c.seen), c.seen


def test_quit_gives_up_after_2s_without_an_answer(chat_clients):
    def script(conn):
        read_frame(conn)          # the close frame; never answered
        time.sleep(3.5 * SLOW)

    srv = ScriptedServer(script)
    c = chat_clients(f"ws://127.0.0.1:{srv.port}/ws")
    t0 = time.monotonic()
    c.type("/quit")
    assert c.wait() == 0
    took = time.monotonic() - t0
    assert 1.5 <= took < 3.5 * SLOW, took
    srv.join()
