"""End-to-end tests of the chat service (SPEC: "Chat service", "Shutdown") with a real,
independent WebSocket client: Node's `ws` package, driven by tests/e2e/chat/run.js. Protocol
faults (fragments, unmasked frames, reserved bits, invalid UTF-8, a socket that never reads) use
the raw client in tests/e2e/chat/wire.js, which does its own handshake and framing.

Each test starts weft with the chat service on an ephemeral port, runs one scenario in Node (the
steps are described in run.js) and judges what every client saw. scripts/npm-deps.sh installs
the npm packages first (quietly, only when needed)."""
import json
import os
import queue
import re
import subprocess
import threading
import time

import pytest

from conftest import http_get_raw, metrics_until, RawHTTP

E2E = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(E2E, "..", ".."))
RUN_JS = os.path.join(E2E, "chat", "run.js")
SANITIZED = bool(os.environ.get("WEFT_SANITIZED"))
SLOW = 2 if SANITIZED else 1   # timeouts scale under sanitizers


@pytest.fixture(scope="module", autouse=True)
def npm_deps():
    script = os.path.join(REPO, "scripts", "npm-deps.sh")
    try:
        r = subprocess.run([script], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.fail(f"scripts/npm-deps.sh: {e}", pytrace=False)
    if r.returncode != 0:
        pytest.fail(f"scripts/npm-deps.sh failed ({r.returncode}):\n{r.stdout}{r.stderr}",
                    pytrace=False)


def chat_weft(weft_factory, *flags):
    """weft with the chat service on (and http, echo, admin as usual)."""
    return weft_factory("--chat", "127.0.0.1:0", *flags)


# ---------------------------------------------------------------------------------------------
# Running a scenario

class ChatRun:
    """The result of one scenario: run.js's JSON, with accessors."""

    def __init__(self, result, stderr):
        self.result = result
        self.stderr = stderr
        self.ok = result.get("ok", False)
        self.error = result.get("error")
        self.clients = result.get("clients", {})

    def events(self, cid, ev=None):
        evs = self.clients.get(cid, {}).get("events", [])
        return [e for e in evs if ev is None or e.get("ev") == ev]

    def msgs(self, cid, mtype=None):
        """The JSON objects client cid received, of one type when mtype is given."""
        out = []
        for e in self.events(cid, "msg"):
            d = e.get("data")
            if isinstance(d, dict) and (mtype is None or d.get("type") == mtype):
                out.append(d)
        return out

    def msg_events(self, cid, mtype):
        return [e for e in self.events(cid, "msg")
                if isinstance(e.get("data"), dict) and e["data"].get("type") == mtype]

    def close_codes(self, cid):
        return [e.get("code") for e in self.events(cid, "close")]

    def http_status(self, cid):
        st = [e.get("status") for e in self.events(cid, "http")]
        return st[0] if st else None

    def opened(self, cid):
        return bool(self.events(cid, "open"))

    def summary(self, last=6):
        lines = [f"scenario ok={self.ok} error={str(self.error)[:2000]}"]
        for cid, c in self.clients.items():
            evs = c.get("events", [])
            lines.append(f"  client {cid} ({c.get('kind')}): {len(evs)} events; last "
                         f"{min(last, len(evs))}:")
            for e in evs[-last:]:
                lines.append("    " + json.dumps(e)[:160])
        if self.stderr.strip():
            lines.append("node stderr:\n" + self.stderr[-3000:])
        return "\n".join(lines)

    def check(self):
        assert self.ok, self.summary()
        return self


def run_chat(w, steps, timeout=20.0, on_checkpoint=None, check=True):
    """Runs steps (see chat/run.js) against weft w's chat service. on_checkpoint(name) is called
    at each checkpoint step, while the clients stay as they are. Returns a ChatRun; with check,
    fails the test unless every step passed."""
    host, port = w.addr("chat")
    timeout *= SLOW
    scenario = {"base": f"ws://{host}:{port}", "timeout": int(timeout * 1000), "steps": steps}
    proc = subprocess.Popen(["node", RUN_JS, json.dumps(scenario)], cwd=E2E,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = queue.Queue()
    err_chunks = []

    def read_out():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def read_err():
        err_chunks.append(proc.stderr.read())

    threads = [threading.Thread(target=read_out, daemon=True),
               threading.Thread(target=read_err, daemon=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout + 15
    result = None
    try:
        while result is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"node chat/run.js did not finish within {timeout + 15:.0f} s")
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                break
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if "checkpoint" in obj:
                if on_checkpoint is not None:
                    on_checkpoint(obj["checkpoint"])
                proc.stdin.write(b"go\n")
                proc.stdin.flush()
            elif "result" in obj:
                result = obj["result"]
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for t in threads:
            t.join(timeout=5)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass
    stderr = b"".join(err_chunks).decode("utf-8", "replace")
    if result is None:
        raise AssertionError(f"node chat/run.js gave no result (exit {proc.returncode}); "
                             f"stderr:\n{stderr[-3000:]}")
    run = ChatRun(result, stderr)
    if check:
        run.check()
    return run


# Step builders.

def open_(cid, query=None, **kw):
    step = {"op": "open", "id": cid, **kw}
    if query is not None:
        step["query"] = query
    return step


def wait(cid, match, count=1, timeout=5.0):
    return {"op": "wait", "id": cid, "match": match, "count": count,
            "timeout": int(timeout * 1000 * SLOW)}


def send(cid, obj=None, text=None):
    return {"op": "send", "id": cid, "text": text} if text is not None else \
        {"op": "send", "id": cid, "json": obj}


def sleep(ms):
    return {"op": "sleep", "ms": ms}


def m_joined(room=None, name=None, members=None):
    d = {"type": "joined"}
    for k, v in (("room", room), ("name", name), ("members", members)):
        if v is not None:
            d[k] = v
    return {"ev": "msg", "data": d}


def m_presence(room, name, event, members=None):
    d = {"type": "presence", "room": room, "name": name, "event": event}
    if members is not None:
        d["members"] = members
    return {"ev": "msg", "data": d}


def m_msg(room=None, frm=None, text=None):
    d = {"type": "msg"}
    for k, v in (("room", room), ("from", frm), ("text", text)):
        if v is not None:
            d[k] = v
    return {"ev": "msg", "data": d}


M_ERROR = {"ev": "msg", "data": {"type": "error"}}
# The end of a connection, however it came: a close frame, EOF, a reset.
ENDED = [{"ev": "close"}, {"ev": "end"}, {"ev": "error"}]
# A join that did not succeed or did: whatever the server answered.
JOIN_ANSWERED = [{"ev": "msg", "data": {"type": "error"}}, {"ev": "msg", "data": {"type": "joined"}},
                 {"ev": "close"}, {"ev": "end"}, {"ev": "error"}]


def chat_metric(m, name):
    """The sum of every sample of name, whatever its labels; None when there is none."""
    vals = [v for (n, _), v in m.items() if n == name]
    return sum(vals) if vals else None


def slow_metrics(m):
    """Samples of weft_chat_* metrics about slow consumers (the SPEC counts them, without naming
    the metric for the close policy)."""
    return {n: v for (n, _), v in m.items() if n.startswith("weft_chat_") and "slow" in n}


def stream_seqs(run, cid, prefix):
    """The sequence numbers of the stream messages (text PREFIX:I:...) client cid received."""
    out = []
    for d in run.msgs(cid, "msg"):
        t = d.get("text")
        if isinstance(t, str) and t.startswith(prefix + ":"):
            out.append(int(t.split(":")[1]))
    return out


def assert_shape(d, **want):
    for k, v in want.items():
        assert k in d, f"{d}: no {k!r}"
        assert d[k] == v, f"{d}: {k} is {d[k]!r}, want {v!r}"


# ---------------------------------------------------------------------------------------------
# Joining, presence, messages, rooms

def test_join_presence_and_defaults(weft_factory):
    w = chat_weft(weft_factory)
    run = run_chat(w, [
        open_("a", "room=r1&name=alice"),
        wait("a", m_joined("r1", "alice", 1)),
        open_("b", "room=r1&name=bob"),
        wait("b", m_joined("r1", "bob", 2)),
        wait("a", m_presence("r1", "bob", "join", 2)),
        open_("c"),                       # no query: room lobby, name guest-N
        wait("c", m_joined("lobby")),
        open_("d", "room=lobby"),         # a second guest: another number
        wait("d", m_joined("lobby")),
        wait("c", {"ev": "msg", "data": {"type": "presence", "event": "join"}}),
        sleep(200),
    ])
    ja = run.msgs("a", "joined")
    assert len(ja) == 1, run.summary()
    assert_shape(ja[0], type="joined", room="r1", name="alice", members=1)
    jb = run.msgs("b", "joined")
    assert_shape(jb[0], type="joined", room="r1", name="bob", members=2)
    pa = run.msgs("a", "presence")
    assert len(pa) == 1, f"a (r1) saw presence from other rooms: {pa}"
    assert_shape(pa[0], type="presence", room="r1", name="bob", event="join", members=2)
    assert run.msgs("b", "presence") == [], "the joiner got a presence message for itself"

    jc = run.msgs("c", "joined")[0]
    jd = run.msgs("d", "joined")[0]
    assert_shape(jc, type="joined", room="lobby", members=1)
    assert_shape(jd, type="joined", room="lobby", members=2)
    for j in (jc, jd):
        assert re.fullmatch(r"guest-\d+", str(j.get("name"))), f"default name {j.get('name')!r}"
    assert jc["name"] != jd["name"], f"two guests got the same name {jc['name']!r}"
    pc = run.msgs("c", "presence")
    assert len(pc) == 1, pc
    assert_shape(pc[0], type="presence", room="lobby", name=jd["name"], event="join", members=2)
    for cid in "abcd":
        assert run.msgs(cid, "error") == [], run.summary()


def test_message_delivery_and_room_isolation(weft_factory):
    w = chat_weft(weft_factory)
    fancy = 'héllo 👋 "quoted" \\ back\nslash / <b>&amp;</b> \u2028 \x01'
    run = run_chat(w, [
        open_("a", "room=r1&name=alice"), wait("a", m_joined("r1")),
        open_("b", "room=r1&name=bob"), wait("b", m_joined("r1")),
        open_("c", "room=r2&name=carol"), wait("c", m_joined("r2")),
        send("a", {"type": "msg", "text": "hi"}),
        wait(["a", "b"], m_msg("r1", "alice", "hi")),
        send("b", {"type": "msg", "text": fancy}),
        wait(["a", "b"], m_msg("r1", "bob", fancy)),
        send("c", {"type": "msg", "text": "only r2"}),
        wait("c", m_msg("r2", "carol", "only r2")),
        sleep(300),
    ])
    for cid in ("a", "b"):
        evs = run.msg_events(cid, "msg")
        assert [e["data"]["text"] for e in evs] == ["hi", fancy], run.summary()
        for e in evs:
            d = e["data"]
            assert set(d) >= {"type", "room", "from", "text", "ts"}, d
            assert d["room"] == "r1"
            ts = d["ts"]
            assert isinstance(ts, int) and not isinstance(ts, bool), f"ts {ts!r} not an integer"
            # ts: microseconds since the epoch, taken when weft received the message.
            assert abs(ts - e["at"] * 1000) < 5_000_000, \
                f"ts {ts} is not within 5 s of the client's clock ({e['at'] * 1000} us)"
        assert evs[0]["data"]["from"] == "alice" and evs[1]["data"]["from"] == "bob"
        assert evs[0]["data"]["ts"] <= evs[1]["data"]["ts"]
    got_c = [d["text"] for d in run.msgs("c", "msg")]
    assert got_c == ["only r2"], f"room r2 got {got_c}"


def test_switch_rooms_and_leave(weft_factory):
    w = chat_weft(weft_factory)
    run = run_chat(w, [
        open_("a", "room=r1&name=alice"), wait("a", m_joined("r1", "alice", 1)),
        open_("b", "room=r1&name=bob"), wait("b", m_joined("r1", "bob", 2)),
        open_("c", "room=r2&name=carol"), wait("c", m_joined("r2", "carol", 1)),
        send("a", {"type": "join", "room": "r2"}),
        wait("a", m_joined("r2", "alice", 2)),
        wait("b", m_presence("r1", "alice", "leave", 1)),
        wait("c", m_presence("r2", "alice", "join", 2)),
        send("a", {"type": "msg", "text": "in r2"}),
        wait(["a", "c"], m_msg("r2", "alice", "in r2")),
        {"op": "close", "id": "c", "code": 1000},              # a clean close
        wait("a", m_presence("r2", "carol", "leave", 1)),
        open_("d", "room=r1&name=dave"), wait("d", m_joined("r1", "dave", 2)),
        wait("b", m_presence("r1", "dave", "join", 2)),
        {"op": "terminate", "id": "b"},                        # the TCP connection dropped
        wait("d", m_presence("r1", "bob", "leave", 1)),
        sleep(200),
    ])
    assert [d["text"] for d in run.msgs("b", "msg")] == [], "r1 got a message sent in r2"
    # The switch: exactly one joined for r2, and a's old room told once.
    assert [(d["room"], d["members"]) for d in run.msgs("a", "joined")] == [("r1", 1), ("r2", 2)]
    pb = [(d["name"], d["event"], d["members"]) for d in run.msgs("b", "presence")]
    assert pb == [("alice", "leave", 1), ("dave", "join", 2)], pb
    pa = [(d["room"], d["name"], d["event"], d["members"]) for d in run.msgs("a", "presence")]
    assert pa == [("r1", "bob", "join", 2), ("r2", "carol", "leave", 1)], \
        f"a's presence messages: {pa}"
    pd = [(d["name"], d["event"], d["members"]) for d in run.msgs("d", "presence")]
    assert pd == [("bob", "leave", 1)], pd
    assert run.close_codes("c") == [1000], run.summary()


def test_broadcast_order_across_workers(weft_factory):
    """One sender, 200 numbered messages as fast as it can; 20 receivers (spread over weft's 2
    workers) and the sender each see all 200, in order, once."""
    w = chat_weft(weft_factory, "--workers", "2")
    n_recv, count = 20, 200
    recv = [f"r{i}" for i in range(n_recv)]
    steps = []
    for r in recv:
        steps.append(open_(r, f"room=order&name={r}"))
    steps.append(wait(recv, m_joined("order")))
    steps += [
        open_("s", "room=order&name=sender"),
        wait("s", m_joined("order", "sender", n_recv + 1)),
        {"op": "burst", "id": "s", "count": count, "prefix": "n"},
        wait(recv + ["s"], m_msg("order", "sender"), count=count, timeout=20),
        sleep(200),
    ]
    run = run_chat(w, steps, timeout=40)
    want = list(range(count))
    for cid in recv + ["s"]:
        got = stream_seqs(run, cid, "n")
        assert got == want, (f"{cid}: {len(got)} messages; first difference at index "
                             f"{next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), count))}: "
                             f"{got[:10]}...")
    ts = [d["ts"] for d in run.msgs("s", "msg")]
    assert ts == sorted(ts), "ts not monotonic for one sender's messages"


def test_bad_messages_get_errors_and_connection_stays(weft_factory):
    w = chat_weft(weft_factory)
    bad = ["not json", '{"type":"msg","text":', '{"type":"nope"}', '{"type":"msg"}', '[1,2,3]',
           '{"text":"no type"}']
    steps = [open_("a", "room=e&name=alice"), wait("a", m_joined("e")),
             open_("b", "room=e&name=bob"), wait("b", m_joined("e"))]
    for i, t in enumerate(bad):
        steps += [send("a", text=t), wait("a", M_ERROR, count=i + 1)]
    steps += [send("a", {"type": "msg", "text": "still here"}),
              wait(["a", "b"], m_msg("e", "alice", "still here")), sleep(200)]
    run = run_chat(w, steps)
    errs = run.msgs("a", "error")
    assert len(errs) == len(bad), errs
    for e in errs:
        assert set(e) >= {"type", "error"} and isinstance(e["error"], str) and e["error"], e
    assert run.events("a", "close") == [], run.summary()
    assert run.msgs("b", "error") == [], "errors went to another member"
    assert [d["text"] for d in run.msgs("b", "msg")] == ["still here"], run.summary()


# ---------------------------------------------------------------------------------------------
# Protocol (raw frames)

def test_fragmented_message_with_interleaved_ping(weft_factory):
    w = chat_weft(weft_factory)
    text = "frag-é-👋-€-end"
    whole = json.dumps({"type": "msg", "text": text}, ensure_ascii=False).encode()
    # Cut inside multi-byte characters: after the first byte of é and in the middle of 👋.
    i1 = whole.index("é".encode()) + 1
    i2 = whole.index("👋".encode()) + 2
    parts = [whole[:i1], whole[i1:i2], whole[i2:]]
    run = run_chat(w, [
        open_("r", "room=frag&name=raw", kind="raw"), wait("r", m_joined("frag")),
        open_("w", "room=frag&name=ws"), wait("w", m_joined("frag")),
        {"op": "frames", "id": "r", "frames": [
            {"opcode": 1, "fin": False, "hex": parts[0].hex()},
            {"opcode": 9, "hex": "abcd", "delay": 50},               # a ping between fragments
            {"opcode": 0, "fin": False, "hex": parts[1].hex(), "delay": 50},
            {"opcode": 0, "fin": True, "hex": parts[2].hex(), "delay": 50},
        ]},
        wait("r", {"ev": "pong", "hex": "abcd"}),
        wait(["r", "w"], m_msg("frag", "raw", text)),
        sleep(100),
    ])
    for cid in ("r", "w"):
        assert [d["text"] for d in run.msgs(cid, "msg")] == [text], run.summary()
    assert run.events("r", "violation") == [], run.events("r", "violation")
    assert run.events("r", "close") == [], run.summary()


def test_ping_gets_pong_with_same_payload(weft_factory):
    w = chat_weft(weft_factory)
    big = bytes(range(125)).hex()
    run = run_chat(w, [
        open_("a", "name=pinger"), wait("a", m_joined()),
        {"op": "ping", "id": "a", "hex": b"hello-123".hex()},
        wait("a", {"ev": "pong", "hex": b"hello-123".hex()}),
        open_("r", "name=rawpinger", kind="raw"), wait("r", m_joined()),
        {"op": "ping", "id": "r", "hex": big},
        wait("r", {"ev": "pong", "hex": big}),
        {"op": "ping", "id": "r", "hex": ""},
        wait("r", {"ev": "pong", "hex": ""}),
        send("r", {"type": "msg", "text": "after pings"}),
        wait("r", m_msg(text="after pings")),
    ])
    assert [e["hex"] for e in run.events("r", "pong")] == [big, ""]
    assert run.events("r", "violation") == []


def _fault_scenario(cases, setup=None):
    """cases: {id: frames}; each client opens (raw), waits for joined, sends its frames, and waits
    for the connection to end."""
    steps = list(setup or [])
    for cid, frames in cases.items():
        steps += [open_(cid, f"room={cid}&name={cid}", kind="raw"), wait(cid, m_joined(cid)),
                  {"op": "frames", "id": cid, "frames": frames}]
    for cid in cases:
        steps.append(wait(cid, [{"ev": "end"}, {"ev": "error"}], timeout=5))
    return steps


def _assert_closed_with(run, cases, code):
    bad = {}
    for cid in cases:
        codes = run.close_codes(cid)
        if codes != [code]:
            bad[cid] = codes
    assert not bad, f"want close code {code}; got {bad}\n{run.summary()}"


def test_invalid_utf8_closes_1007(weft_factory):
    w = chat_weft(weft_factory)
    pre = b'{"type":"msg","text":"'
    cases = {
        "ff": [{"opcode": 1, "hex": (pre + b'\xff"}').hex()}],
        "surrogate": [{"opcode": 1, "hex": (pre + b'\xed\xa0\x80"}').hex()}],
        "overlong": [{"opcode": 1, "hex": (pre + b'\xc0\xaf"}').hex()}],
        # A message whose last fragment ends inside a code point.
        "cut": [{"opcode": 1, "fin": False, "hex": (pre + b'ok').hex()},
                {"opcode": 0, "fin": True, "hex": b'\xe2\x82'.hex()}],
        # A close frame whose reason is not UTF-8.
        "closereason": [{"opcode": 8, "hex": "03e8ff"}],
    }
    run = run_chat(w, _fault_scenario(cases))
    _assert_closed_with(run, cases, 1007)


def test_oversized_message_closes_1009(weft_factory):
    w = chat_weft(weft_factory, "--chat-max-message", "1K")
    big = json.dumps({"type": "msg", "text": "x" * 2000})
    frag = json.dumps({"type": "msg", "text": "y" * 1700}).encode()
    thirds = [frag[:600], frag[600:1200], frag[1200:]]
    cases = {
        "single": [{"opcode": 1, "text": big}],
        "fragmented": [{"opcode": 1, "fin": False, "hex": thirds[0].hex()},
                       {"opcode": 0, "fin": False, "hex": thirds[1].hex()},
                       {"opcode": 0, "fin": True, "hex": thirds[2].hex()}],
    }
    under = "u" * 900   # the message, JSON and all, stays under 1 KiB
    setup = [
        open_("ok", "room=big&name=ok"), wait("ok", m_joined("big")),
        send("ok", {"type": "msg", "text": under}),
        wait("ok", {"ev": "msg", "data": {"type": "msg", "from": "ok", "text_len": 900}}),
        open_("wsbig", "room=big&name=wsbig"), wait("wsbig", m_joined("big")),
        send("wsbig", text=big),
        wait("wsbig", {"ev": "close"}),
    ]
    run = run_chat(w, _fault_scenario(cases, setup))
    _assert_closed_with(run, cases, 1009)
    assert run.close_codes("wsbig") == [1009], run.summary()
    assert run.events("ok", "close") == [], run.summary()
    texts = [d.get("text_len") for d in run.msgs("ok", "msg")]
    assert texts == [900], f"room 'big' got {texts}: an oversized message was delivered"


def test_protocol_errors_close_1002(weft_factory):
    w = chat_weft(weft_factory)
    hi = json.dumps({"type": "msg", "text": "hi"})
    cases = {
        "unmasked": [{"opcode": 1, "mask": False, "text": hi}],
        "rsv1": [{"opcode": 1, "rsv": 4, "text": hi}],
        "rsv3": [{"opcode": 1, "rsv": 1, "text": hi}],
        "opcode3": [{"opcode": 3, "text": hi}],
        "opcode11": [{"opcode": 11, "text": ""}],
        "orphancont": [{"opcode": 0, "fin": True, "text": hi}],
        "textintext": [{"opcode": 1, "fin": False, "text": '{"type":'},
                       {"opcode": 1, "fin": True, "text": hi}],
        "fragping": [{"opcode": 9, "fin": False, "hex": "01"}],
        "bigping": [{"opcode": 9, "hex": "00" * 126}],
    }
    run = run_chat(w, _fault_scenario(cases))
    _assert_closed_with(run, cases, 1002)
    for cid in cases:
        assert run.msgs(cid, "msg") == [], f"{cid}: a faulty frame was delivered"


def test_handshake_errors(weft_factory):
    """Plain HTTP to /ws: 426. A bad WebSocket handshake: a 4xx, never 101."""
    w = chat_weft(weft_factory)
    addr = w.addr("chat")
    status, headers, body = http_get_raw(addr, "/ws")
    assert status == 426, (status, headers, body[:200])
    assert "websocket" in headers.get("upgrade", "").lower(), \
        f"426 without Upgrade: websocket: {headers}"
    base = {"Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    for change in ({"Sec-WebSocket-Version": "99"}, {"Sec-WebSocket-Key": "short"},
                   {"Sec-WebSocket-Key": None}):
        hdrs = {k: v for k, v in {**base, **change}.items() if v is not None}
        with RawHTTP(addr, timeout=5) as c:
            c.send("GET /ws HTTP/1.1\r\nHost: x\r\n" +
                   "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n")
            r = c.read_response()
        assert 400 <= r.status < 500, f"{change}: {r}"
        if change.get("Sec-WebSocket-Version"):
            assert r.status in (400, 426), r
    # The good handshake, for contrast.
    with RawHTTP(addr, timeout=5) as c:
        c.send("GET /ws HTTP/1.1\r\nHost: x\r\n" +
               "".join(f"{k}: {v}\r\n" for k, v in base.items()) + "\r\n")
        r = c.read_response(head=True)
        assert r.status == 101, r
        assert r.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", r


def test_chat_page(weft_factory):
    w = chat_weft(weft_factory)
    status, headers, body = http_get_raw(w.addr("chat"), "/")
    assert status == 200, (status, body[:200])
    assert headers.get("content-type", "").startswith("text/html"), headers
    page = body.decode("utf-8")
    assert "<script" in page.lower(), "the chat page has no <script>"
    # One HTML file, no outside resources.
    outside = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not outside, f"the chat page loads outside resources: {outside}"


def test_origin_check(weft_factory):
    w = chat_weft(weft_factory, "--chat-origin", "http://allowed.example")
    run = run_chat(w, [
        open_("evil", "name=evil", origin="http://evil.example", require=False),
        open_("good", "name=good", origin="http://allowed.example"),
        wait("good", m_joined()),
    ])
    assert run.http_status("evil") == 403, run.summary()
    assert not run.opened("evil")
    assert run.http_status("good") == 101


# ---------------------------------------------------------------------------------------------
# Slow consumers

# The stream a sender sends while two clients stop reading: 10 MB, well past what the kernel
# buffers for one connection on loopback (about 4.3 MB here: the receiver's buffer and the
# sender's, which grows to net.ipv4.tcp_wmem's 4 MiB), so weft's own queue for them must grow.
# The sender keeps at most WINDOW messages (48 KB) ahead of the clients that do read, so that
# they never have more than --chat-max-queue 64K outstanding.
SLOW_COUNT, SLOW_SIZE, SLOW_WINDOW = 2500, 4000, 12


def _slow_consumer_steps(count=SLOW_COUNT, size=SLOW_SIZE):
    normal = ["s", "n1", "n2"]
    steps = [
        open_("slowraw", "room=flood&name=slowraw", kind="raw"),
        wait("slowraw", m_joined("flood")),
        {"op": "pause", "id": "slowraw"},                   # a raw socket that stops reading
        open_("slowws", "room=flood&name=slowws"),
        wait("slowws", m_joined("flood")),
        {"op": "pause", "id": "slowws"},                    # a ws client whose socket is paused
        open_("n1", "room=flood&name=n1"), open_("n2", "room=flood&name=n2"),
        open_("s", "room=flood&name=s"),
        wait(normal, m_joined("flood")),
        {"op": "stream", "id": "s", "count": count, "size": size, "prefix": "f", "window": SLOW_WINDOW,
         "watch": normal, "timeout": 30000 * SLOW},
        wait(normal, m_msg("flood", "s"), count=count, timeout=10),
        {"op": "checkpoint", "name": "streamed"},
    ]
    return normal, steps


def test_slow_consumer_closed_1008(weft_factory):
    w = chat_weft(weft_factory, "--chat-max-queue", "64K")
    normal, steps = _slow_consumer_steps()
    steps += [
        {"op": "resume", "id": ["slowraw", "slowws"]},
        wait(["slowraw", "slowws"], ENDED, timeout=10),
        send("s", {"type": "msg", "text": "after"}),
        wait(normal, m_msg("flood", "s", "after")),
    ]
    seen = {}

    count = SLOW_COUNT

    def at(name):
        m = metrics_until(w, lambda m: chat_metric(m, "weft_chat_clients") == len(normal),
                          timeout=5)
        seen["clients"] = chat_metric(m, "weft_chat_clients")
        seen["slow"] = slow_metrics(m)

    run = run_chat(w, steps, timeout=60, on_checkpoint=at)
    for cid in normal:
        got = stream_seqs(run, cid, "f")
        assert got == list(range(count)), f"{cid} (not slow) got {len(got)} of {count} messages"
        assert run.events(cid, "close") == [], f"{cid} (not slow) was closed: {run.summary()}"
    for cid in ("slowraw", "slowws"):
        got = stream_seqs(run, cid, "f")
        assert len(got) < count, f"{cid} got all {count} messages: never found slow"
        # Closed, never skipped: what it got is the stream's beginning, with no gap.
        assert got == list(range(len(got))), f"{cid}: messages skipped before the close: {got[:20]}"
        codes = run.close_codes(cid)
        assert codes in ([1008], [1006], []), f"{cid}: close codes {codes}"
        if cid == "slowraw" and codes:
            assert codes == [1008], codes
        if cid == "slowws":
            # ws reports 1006 only when the TCP connection ended without a close frame.
            assert codes in ([1008], [1006]), codes
    assert seen.get("clients") == len(normal), \
        f"weft_chat_clients {seen.get('clients')}, want {len(normal)} once the slow two are closed"
    if seen.get("slow"):
        assert sum(seen["slow"].values()) >= 2, f"slow-consumer metrics: {seen['slow']}"


def test_slow_consumer_drop_policy(weft_factory):
    w = chat_weft(weft_factory, "--chat-max-queue", "64K", "--chat-slow-policy", "drop")
    normal, steps = _slow_consumer_steps()
    steps += [
        {"op": "resume", "id": ["slowraw", "slowws"]},
        sleep(1000),                                        # let them catch up
        send("s", {"type": "msg", "text": "final"}),
        wait(normal + ["slowraw", "slowws"], m_msg("flood", "s", "final"), timeout=10),
        sleep(200),
    ]
    seen = {}
    count = SLOW_COUNT

    def at(name):
        m = metrics_until(w, lambda m: (chat_metric(m, "weft_chat_messages_dropped_total") or 0) > 0,
                          timeout=5)
        seen["dropped_mid"] = chat_metric(m, "weft_chat_messages_dropped_total")
        seen["clients"] = chat_metric(m, "weft_chat_clients")

    run = run_chat(w, steps, timeout=60, on_checkpoint=at)
    for cid in normal:
        got = stream_seqs(run, cid, "f")
        assert got == list(range(count)), f"{cid} (not slow) got {len(got)} of {count} messages"
    lost = 0
    for cid in ("slowraw", "slowws"):
        got = stream_seqs(run, cid, "f")
        assert run.events(cid, "close") == [], f"{cid} closed under the drop policy: {run.summary()}"
        assert got == sorted(set(got)), f"{cid}: out of order or repeated"
        assert len(got) < count, f"{cid} got all {count}: never found slow"
        lost += count - len(got)
    assert seen["clients"] == 5, f"weft_chat_clients {seen['clients']} while the slow ones are kept"
    assert (seen["dropped_mid"] or 0) > 0, "weft_chat_messages_dropped_total did not move"
    m = metrics_until(w, lambda m: chat_metric(m, "weft_chat_messages_dropped_total") == lost,
                      timeout=3)
    dropped = chat_metric(m, "weft_chat_messages_dropped_total")
    assert dropped == lost, (f"weft_chat_messages_dropped_total {dropped}, but the slow clients "
                             f"missed {lost} messages: something was dropped silently or "
                             f"counted twice")


# ---------------------------------------------------------------------------------------------
# Shutdown, metrics, limits

def test_sigterm_closes_websockets_1001(weft_factory):
    w = chat_weft(weft_factory)
    ids = ["a", "b", "c"]
    run = run_chat(w, [
        open_("a", "room=x&name=a"), open_("b", "room=x&name=b"), open_("c", "room=y&name=c"),
        open_("r", "room=y&name=r", kind="raw"),
        wait(ids + ["r"], m_joined()),
        {"op": "kill", "pid": w.pid, "signal": "SIGTERM"},
        wait(ids + ["r"], {"ev": "close"}, timeout=12),
        wait("r", [{"ev": "end"}, {"ev": "error"}], timeout=5),
    ], timeout=30)
    for cid in ids + ["r"]:
        assert run.close_codes(cid) == [1001], f"{cid}: {run.close_codes(cid)}\n{run.summary()}"
    assert run.events("r", "violation") == []
    rc = w.wait(15)
    assert rc == 0, f"weft exited with {rc} after SIGTERM"


def test_metrics_move(weft_factory):
    w = chat_weft(weft_factory)
    names = ("weft_chat_rooms", "weft_chat_clients", "weft_chat_messages_received_total",
             "weft_chat_messages_delivered_total")
    m0 = w.metrics()
    missing = [n for n in names if chat_metric(m0, n) is None]
    assert not missing, f"/metrics lacks {missing}"
    base = {n: chat_metric(m0, n) for n in names}
    assert base["weft_chat_rooms"] == 0 and base["weft_chat_clients"] == 0, base
    snaps = {}

    def val(m):
        return {n: chat_metric(m, n) for n in names}

    # What each checkpoint waits for, given the snapshot before it. Presence messages may count
    # as deliveries too: only the deltas across the one message are checked exactly.
    expect = {
        "joined": lambda v, prev: v["weft_chat_rooms"] == 1 and v["weft_chat_clients"] == 3,
        "delivered": lambda v, prev: (
            v["weft_chat_messages_received_total"] == prev["weft_chat_messages_received_total"] + 1
            and v["weft_chat_messages_delivered_total"] ==
            prev["weft_chat_messages_delivered_total"] + 3),
        "closed": lambda v, prev: v["weft_chat_rooms"] == 0 and v["weft_chat_clients"] == 0,
    }
    order = {"joined": None, "delivered": "joined", "closed": "delivered"}

    def at(name):
        prev = snaps.get(order[name]) or base
        m = metrics_until(w, lambda m: expect[name](val(m), prev), timeout=3)
        snaps[name] = val(m)

    ids = ["a", "b", "c"]
    run_chat(w, [
        open_("a", "room=m&name=a"), open_("b", "room=m&name=b"), open_("c", "room=m&name=c"),
        wait(ids, m_joined("m")),
        wait("a", {"ev": "msg", "data": {"type": "presence"}}, count=2),
        {"op": "checkpoint", "name": "joined"},
        send("a", {"type": "msg", "text": "count me"}),
        wait(ids, m_msg("m", "a", "count me")),
        {"op": "checkpoint", "name": "delivered"},
        {"op": "close", "id": "a"}, {"op": "close", "id": "b"}, {"op": "close", "id": "c"},
        wait(ids, {"ev": "close"}),
        {"op": "checkpoint", "name": "closed"},
    ], on_checkpoint=at)
    j, d = snaps["joined"], snaps["delivered"]
    assert j["weft_chat_rooms"] == 1 and j["weft_chat_clients"] == 3, f"after 3 joins: {j}"
    assert d["weft_chat_messages_received_total"] - j["weft_chat_messages_received_total"] == 1, \
        f"received: {j} -> {d}"
    assert d["weft_chat_messages_delivered_total"] - j["weft_chat_messages_delivered_total"] == 3, \
        f"delivered: {j} -> {d}"
    c = snaps["closed"]
    assert c["weft_chat_rooms"] == 0 and c["weft_chat_clients"] == 0, f"after closing all: {c}"


def test_limit_clients_per_room(weft_factory):
    w = chat_weft(weft_factory, "--chat-max-clients-per-room", "2")
    run = run_chat(w, [
        open_("a", "room=r1&name=alice"), wait("a", m_joined("r1", "alice", 1)),
        open_("b", "room=r1&name=bob"), wait("b", m_joined("r1", "bob", 2)),
        # A third joiner: refused, by an error message or by a refused handshake or a close.
        open_("c", "room=r1&name=carol", require=False),
        wait("c", JOIN_ANSWERED + [{"ev": "http", "status": 403}, {"ev": "http", "status": 503}]),
        # A member of another room asking to join the full one.
        open_("d", "room=r2&name=dave"), wait("d", m_joined("r2", "dave", 1)),
        send("d", {"type": "join", "room": "r1"}),
        wait("d", M_ERROR),
        send("d", {"type": "msg", "text": "still in r2"}),
        wait("d", m_msg("r2", "dave", "still in r2")),
        sleep(200),
        # A place frees up.
        {"op": "close", "id": "a"},
        wait("b", m_presence("r1", "alice", "leave", 1)),
        open_("e", "room=r1&name=erin"), wait("e", m_joined("r1", "erin", 2)),
    ])
    assert not any(d.get("room") == "r1" for d in run.msgs("c", "joined")), \
        f"a third client joined a room limited to 2: {run.summary()}"
    names = [d["name"] for d in run.msgs("b", "presence") if d["event"] == "join"]
    assert "carol" not in names and "dave" not in names, f"r1 got joins {names}"
    assert [d["room"] for d in run.msgs("d", "joined")] == ["r2"], run.msgs("d", "joined")
    assert [d["text"] for d in run.msgs("b", "msg")] == [], "r1 got a message from r2"


def test_limit_rooms(weft_factory):
    w = chat_weft(weft_factory, "--chat-max-rooms", "1")
    run = run_chat(w, [
        open_("a", "room=r1&name=alice"), wait("a", m_joined("r1", "alice", 1)),
        open_("b", "room=r1&name=bob"), wait("b", m_joined("r1", "bob", 2)),
        send("b", {"type": "join", "room": "r2"}),
        wait("b", M_ERROR),
        send("b", {"type": "msg", "text": "still in r1"}),
        wait(["a", "b"], m_msg("r1", "bob", "still in r1")),
        open_("c", "room=r3&name=carol", require=False),
        wait("c", JOIN_ANSWERED + [{"ev": "http", "status": 403}, {"ev": "http", "status": 503}]),
        sleep(200),
        # Once r1 is empty it is gone, and another room can be made.
        {"op": "close", "id": "a"}, {"op": "close", "id": "b"},
        wait(["a", "b"], {"ev": "close"}),
        sleep(100),
        open_("d", "room=r4&name=dave"), wait("d", m_joined("r4", "dave", 1)),
    ])
    assert [d["room"] for d in run.msgs("b", "joined")] == ["r1"], run.msgs("b", "joined")
    assert not any(d.get("room") == "r3" for d in run.msgs("c", "joined")), \
        f"a second room was made past --chat-max-rooms 1: {run.summary()}"
    assert [d["name"] for d in run.msgs("a", "presence") if d["event"] == "leave"] == [], \
        "b left r1 when its join to r2 was refused"
