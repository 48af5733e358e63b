"""Chat rooms across two weft instances through a real redis-server (Debian's), driven by Node's
`ws` client: every message arrives once at every member on both instances; with Redis stopped
each instance still delivers locally; when Redis comes back, cross-instance delivery resumes."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import free_port, metric, scrape_metrics

E2E = os.path.dirname(os.path.abspath(__file__))



class Redis:
    def __init__(self, port):
        self.port = port
        self.proc = None

    def start(self):
        assert shutil.which("redis-server"), "redis-server is not installed (scripts/deps.sh test)"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def redis():
    r = Redis(free_port())
    r.start()
    yield r
    r.stop()


def run_clients(clients, send, wait_ms=800):
    spec = {"clients": clients, "send": send, "wait_ms": wait_ms}
    p = subprocess.run(["node", "redis_scenario.js", json.dumps(spec)], cwd=E2E,
                       capture_output=True, text=True, timeout=30)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert p.returncode == 0, out
    return out["got"]


def wait_connected(w, want, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(scrape_metrics(w.addr("admin")), "weft_chat_redis_connected") == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"weft_chat_redis_connected never became {want}")


def test_rooms_span_instances(weft_factory, redis):
    url = f"redis://127.0.0.1:{redis.port}"
    w1 = weft_factory("--chat", "127.0.0.1:0", "--redis", url)
    w2 = weft_factory("--chat", "127.0.0.1:0", "--redis", url)
    wait_connected(w1, 1)
    wait_connected(w2, 1)

    def ws(w, name):
        host, port = w.addr("chat")
        return {"url": f"ws://{host}:{port}/ws?room=shared&name={name}", "name": name}

    clients = [ws(w1, "a1"), ws(w1, "a2"), ws(w2, "b1"), ws(w2, "b2")]
    # All up: each message once at every member, on both instances.
    got = run_clients(clients, send=[0, 2])
    for texts in got:
        assert sorted(texts) == ["m-a1", "m-b1"], got

    # Redis gone: each instance still delivers to its own members, and only to them.
    redis.stop()
    wait_connected(w1, 0)
    got = run_clients(clients, send=[0, 2])
    assert got[0] == ["m-a1"] and got[1] == ["m-a1"], got
    assert got[2] == ["m-b1"] and got[3] == ["m-b1"], got

    # Redis back on the same port: the bridges reconnect (back-off <= 5 s) and resubscribe.
    redis.start()
    wait_connected(w1, 1)
    wait_connected(w2, 1)
    got = run_clients(clients, send=[1, 3])
    for texts in got:
        assert sorted(texts) == ["m-a2", "m-b2"], got
