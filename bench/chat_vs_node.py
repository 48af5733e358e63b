#!/usr/bin/python3
"""Chat fan-out benchmark: weft's chat service beside a Node `ws` broadcast server speaking the
same protocol, and beside a floor server, one room, one sender, 1,000 and 10,000 subscribers.

    bench/chat_vs_node.py [--weft build-bench/weft] [--workers 1,2] [--duration 10]
                          [--steps '1000:20,1000;10000:2,100'] [--no-floor] [--json FILE]

The floor server (bench/floor_ws_server.c, compiled here with gcc -O2 -lcrypto) is the least
work any server could do for this test: one thread, epoll, the frame built once and one
non-blocking send() per member (a send that would block drops the frame; counted, and noted when
not 0). Its fan-out p99 is a lower bound for what a one-thread server that writes each member's
copy can reach on this machine, and the report sets Node's p99 / 10 (the goal) against it: a
goal below the floor is out of reach here (bench/README.md says what the floor leaves out).
--no-floor skips it.

For every server (weft --workers 1, 2; Node; the floor) and every room size it reports
deliveries/s achieved against the target, fan-out latency (receive time - the server's "ts") and
end-to-end latency (receive time - the sender's scheduled send time), the server's CPU, the load
client's CPU, the machine's other CPU, and resident memory per connected idle client, in the
shared room (1 s after the join storm and after --quiet seconds) and with each client alone in
its own room; then weft/Node ratios against the goals (>= 10x Node's deliveries/s, p99 <= 1/10
of Node's, <= 512 B RSS per idle client) and the p99 goal against the floor's p99. A --steps
entry without rates ('1000:;10000:') measures memory only. See bench/README.md. Everything runs
on 127.0.0.1 with ephemeral ports; every process started here is stopped by its PID; the
default run takes about 6 minutes."""

import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.join(bl.REPO, "tests", "e2e", "node_modules")
NODE_SERVER = os.path.join(HERE, "node_ws_server.js")
FLOOR_SOURCE = os.path.join(HERE, "floor_ws_server.c")


def compile_floor(tmp):
    exe = os.path.join(tmp, "floor_ws_server")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", exe, FLOOR_SOURCE, "-lcrypto"], check=True,
                   timeout=120)
    return exe


def compile_client(tmp):
    exe = os.path.join(tmp, "chat_client")
    subprocess.run(["gcc", "-O2", "-Wall", "-I", os.path.join(bl.REPO, "src"), "-o", exe,
                    os.path.join(HERE, "chat_client.c"),
                    os.path.join(bl.REPO, "src", "core", "hist.c"), "-lm", "-lpthread"],
                   check=True, timeout=120)
    return exe


class Lines:
    """Line reader over a pipe with timeouts (select + os.read)."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""
        self.eof = False

    def read(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return None
            r, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if r:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.eof = True
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def expect(self, prefix, timeout):
        """The next line starting with prefix (other lines are skipped); None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.read(max(0.0, deadline - time.monotonic()))
            if line is None:
                return None
            if line.startswith(prefix):
                return line


class ChatServer:
    """A comparison server on an ephemeral port that prints `listening chat 127.0.0.1:PORT`:
    bench/node_ws_server.js (kind "node") or bench/floor_ws_server.c's binary (kind "floor").
    Both take [--no-join-presence] PORT. Stop it with stop()."""

    def __init__(self, kind, exe, join_presence, log_path, ready_timeout=15.0):
        args = ([exe, NODE_SERVER] if kind == "node" else [exe]) + \
            ([] if join_presence else ["--no-join-presence"]) + ["0"]
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        self.log_path = log_path
        self.errf = open(log_path, "w+")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.errf,
                                     stdin=subprocess.DEVNULL, env=env, cwd=HERE)
        self.pid = self.proc.pid
        self.ports = {}
        line = Lines(self.proc.stdout).expect("listening chat", ready_timeout)
        if not line:
            self.stop()
            raise RuntimeError(f"{kind} server did not start: {open(log_path).read()[-2000:]}")
        self.ports["chat"] = int(line.rsplit(":", 1)[1])

    def stop(self):
        """SIGTERM (Node has no handler: it ends at once; the floor prints its counts and exits
        0), SIGKILL after 5 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.errf.close()
        return self.proc.returncode


def unlabeled(text, name):
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def weft_chat_metrics(server):
    try:
        t = server.metrics()
    except OSError as e:
        return {"error": str(e)}
    names = ["weft_chat_clients", "weft_chat_rooms", "weft_chat_messages_received_total",
             "weft_chat_messages_delivered_total", "weft_chat_messages_dropped_total",
             "weft_chat_slow_consumers_closed_total", "process_open_fds"]
    return {n: unlabeled(t, n) for n in names}


def start_server(kind, workers, weft_bin, exe, join_presence, tmp, tag):
    log = os.path.join(tmp, f"{tag}.log")
    if kind == "weft":
        extra = ["--max-connections", "30000", "--chat-max-clients-per-room", "30000",
                 "--chat-max-rooms", "30000"]
        return bl.Weft(weft_bin, workers, extra=extra, services=("chat", "admin"),
                       log_path=log), log
    return ChatServer(kind, exe, join_presence, log), log


def stop_server(kind, srv):
    return srv.stop()


def warm_up(port):
    """One WebSocket handshake and close, so that what any first connection pages in (weft:
    libcrypto's SHA-1 code and tables, ~2.7 MB of RSS; Node: its WebSocket code paths) is in
    the 'before' reading: a one-time cost, not a per-client one."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /ws?room=warm-up&name=warm-up HTTP/1.1\r\nHost: bench\r\n"
                  b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk


def run_case(a, client, kind, workers, nsubs, rates, tmp, room_each=False):
    """One server, one room size: connect, idle memory, then each rate step. Returns a dict."""
    tag = f"{kind}-w{workers}-n{nsubs}{'-R' if room_each else ''}"
    join_presence = kind == "weft" or room_each or nsubs <= a.node_join_presence_max
    srv, log = start_server(kind, workers, a.weft, a.floor_exe if kind == "floor" else a.node,
                            join_presence, tmp, tag)
    res = {"server": kind, "workers": workers, "subscribers": nsubs, "room_each": room_each,
           "join_presence": join_presence, "steps": [], "notes": []}
    cargs = [client, "-t", str(a.threads), "-c", "20", "-s", str(a.settle_timeout)]
    if not join_presence:
        cargs.append("-n")
    if room_each:
        cargs.append("-R")
    cargs += ["127.0.0.1", str(srv.ports["chat"]), str(nsubs)]
    cerr = open(os.path.join(tmp, f"{tag}.client.log"), "w+")
    p = out = None
    try:
        time.sleep(0.3)
        warm_up(srv.ports["chat"])
        time.sleep(0.5)
        res["rss_before"] = bl.vm_rss(srv.pid)
        cpu_before = bl.proc_cpu(srv.pid)
        t0 = time.monotonic()
        p = subprocess.Popen(cargs, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=cerr,
                             text=False)
        out = Lines(p.stdout)
        line = out.expect("connected ", 20 + a.settle_timeout + nsubs / 200)
        if line is None:
            raise RuntimeError(f"{tag}: the client did not report connecting")
        res["connect"] = json.loads(line.split(" ", 1)[1])
        res["connect_wall_s"] = time.monotonic() - t0
        res["connect_server_cpu_s"] = bl.proc_cpu(srv.pid) - cpu_before
        c = res["connect"]
        ok = c["joined"] == nsubs and c["sender_joined"] and c["settled"]
        time.sleep(1.0)
        res["rss_idle"] = bl.vm_rss(srv.pid)
        res["bytes_per_idle_client"] = (res["rss_idle"] - res["rss_before"]) / nsubs
        # Then quiet: weft's pools give back a burst's peak within about two seconds.
        res["rss_quiet_curve"] = [res["rss_idle"]]
        while len(res["rss_quiet_curve"]) < 4 * (a.quiet - 1.0) + 1:
            time.sleep(0.25)
            res["rss_quiet_curve"].append(bl.vm_rss(srv.pid))
        res["rss_quiet"] = res["rss_quiet_curve"][-1]
        res["bytes_per_quiet_client"] = (res["rss_quiet"] - res["rss_before"]) / nsubs
        if kind == "weft":
            res["metrics_idle"] = weft_chat_metrics(srv)
        if not ok:
            res["notes"].append(f"{tag}: not all connected/settled: {c}")
        if c.get("stale_join_presence"):
            res["notes"].append(
                f"{tag}: {c['stale_join_presence']:,} stale join presence messages (a member "
                "told of a join that happened before its own; its \"joined\" count included it)")
        for rate in (rates if ok else []):
            p.stdin.write(f"step {rate} {a.duration} {a.drain}\n".encode())
            p.stdin.flush()
            line = out.expect("start ", 10)
            if line is None:
                raise RuntimeError(f"{tag}: step {rate}/s did not start")
            s0, m0, w0 = bl.proc_cpu(srv.pid), bl.machine_cpu(), time.monotonic()
            line = out.expect("end ", a.duration + a.drain + 30)
            s1, m1, w1 = bl.proc_cpu(srv.pid), bl.machine_cpu(), time.monotonic()
            if line is None:
                raise RuntimeError(f"{tag}: step {rate}/s did not end")
            st = json.loads(line.split(" ", 2)[2])
            wall = w1 - w0
            server_cpu = s1 - s0
            client_cpu = st["client_user_s"] + st["client_sys_s"]
            st.update({
                "target_per_s": rate * nsubs, "server_cpu_s": server_cpu,
                "server_cpu_pct": 100 * server_cpu / wall, "client_cpu_s": client_cpu,
                "client_cpu_pct": 100 * client_cpu / wall,
                "other_cpu_pct": 100 * max(0.0, (m1[0] - m0[0]) - server_cpu - client_cpu) / wall,
                "server_us_per_delivery": 1e6 * server_cpu / st["delivered"]
                if st["delivered"] else None,
                "wall_measured_s": wall,
            })
            res["steps"].append(st)
            print(f"  {tag} {rate} msg/s: {st['deliveries_per_s']:,.0f} deliveries/s "
                  f"(target {rate * nsubs:,}), fan-out p99 {st['fanout_us']['p99'] / 1000:.1f} ms",
                  file=sys.stderr, flush=True)
        res["rss_after_steps"] = bl.vm_rss(srv.pid)
        if kind == "weft":
            res["metrics_end"] = weft_chat_metrics(srv)
        p.stdin.write(b"detach\n")
        p.stdin.flush()
        out.expect("detached", 10)
    finally:
        rc = stop_server(kind, srv)
        res["exit_code"] = rc
        if p is not None:
            try:
                p.stdin.write(b"quit\n")
                p.stdin.flush()
                p.stdin.close()
            except OSError:
                pass
            line = out.expect("final ", 15) if out else None
            if line:
                res["client_final"] = json.loads(line.split(" ", 1)[1])
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            p.stdout.close()
            res["client_rc"] = p.returncode
        cerr.seek(0)
        res["client_stderr"] = cerr.read().strip().splitlines()[:10]
        cerr.close()
    with open(log) as f:
        text = f.read()
    m = re.search(r"^floor: (\d+) messages broadcast, (\d+) frames sent, (\d+) dropped .*, "
                  r"(\d+) cut.*$", text, re.M) if kind == "floor" else None
    if m:
        res["floor_counts"] = dict(zip(("messages", "sent", "dropped", "cut"),
                                       (int(g) for g in m.groups())))
        text = text.replace(m.group(0), "")
    res["server_log_odd"] = bl.odd_log_lines(text)[:10] if kind == "weft" else \
        [l for l in text.splitlines() if l.strip()][:10]
    exp_rc = -signal.SIGTERM if kind == "node" else 0
    if rc != exp_rc:
        res["notes"].append(f"{tag}: server exit status {rc}")
    if res["server_log_odd"]:
        res["notes"].append(f"{tag}: server log: {res['server_log_odd'][:5]}")
    if res["client_stderr"]:
        res["notes"].append(f"{tag}: client stderr: {res['client_stderr'][:5]}")
    for st in res["steps"]:
        bad = {k: st[k] for k in ("errors", "closed_by_server", "gaps", "reordered",
                                  "error_frames", "other_frames", "negative_latency") if st[k]}
        if bad or not st["complete"]:
            res["notes"].append(
                f"{tag} {st['rate']:g} msg/s: delivered {st['delivered']:,} of "
                f"{st['expected']:,} by {a.drain:g} s after the window" +
                (f"; {bad}" if bad else ""))
    if kind == "floor" and (not m or res["floor_counts"]["dropped"] or
                            res["floor_counts"]["cut"]):
        res["notes"].append(f"{tag}: floor server's counts: {res.get('floor_counts')} (a frame "
                            "that would block is dropped, a short write closes the member)")
    if kind == "weft" and res.get("metrics_end"):
        me = res["metrics_end"]
        if me.get("weft_chat_messages_dropped_total") or \
                me.get("weft_chat_slow_consumers_closed_total"):
            res["notes"].append(f"{tag}: weft dropped/slow-closed: {me}")
    return res


def ms(us):
    return f"{us / 1000:,.1f}" if us is not None else "-"


def parse_steps(s):
    plan = []
    for part in s.split(";"):
        n, rates = part.split(":")
        plan.append((int(n), [float(r) if "." in r else int(r) for r in rates.split(",") if r]))
    return plan


def label(r):
    return r["server"] if r["server"] != "weft" else f"weft w{r['workers']}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weft", default=bl.DEFAULT_WEFT, help="weft binary (default: %(default)s)")
    ap.add_argument("--node", default=shutil.which("node") or "node", help="node binary")
    ap.add_argument("--workers", default="1,2", help="comma-separated weft --workers values")
    ap.add_argument("--steps", default="1000:20,1000;10000:2,100",
                    help="SUBSCRIBERS:RATE,RATE;... messages/s per step, in order "
                         "(default: %(default)s)")
    ap.add_argument("--duration", type=float, default=10.0, help="send window per step, s")
    ap.add_argument("--drain", type=float, default=5.0,
                    help="longest wait for deliveries after a window, s")
    ap.add_argument("--settle-timeout", type=float, default=120.0,
                    help="longest wait for the join presence storm, s")
    ap.add_argument("--quiet", type=float, default=3.0,
                    help="seconds after the join storm for the quiet memory figure (weft trims "
                         "its pools once a second to the last second's peak: 1 to 2 s after a "
                         "burst) (default: %(default)s)")
    ap.add_argument("--node-join-presence-max", type=int, default=1000,
                    help="above this many subscribers Node and the floor server run "
                         "--no-join-presence (default: %(default)s)")
    ap.add_argument("--idle-clients", type=int, default=10000,
                    help="clients for the storm-free memory figure (each alone in a room); "
                         "0 skips it")
    ap.add_argument("--threads", type=int, default=1, help="load client threads")
    ap.add_argument("--skip-node", action="store_true")
    ap.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                    help="also run bench/floor_ws_server.c, the least work any server could do "
                         "here, as a third contender (default: on; --no-floor skips it)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    a = ap.parse_args()

    workers = [int(w) for w in a.workers.split(",") if w]
    plan = parse_steps(a.steps)
    nofile = bl.raise_nofile()
    if not shutil.which("gcc"):
        sys.exit("chat_vs_node.py: gcc not found")
    if not os.access(a.weft, os.X_OK):
        sys.exit(f"chat_vs_node.py: no weft binary at {a.weft} (build it first, see "
                 "bench/README.md)")
    if not a.skip_node and not (shutil.which(a.node) and
                                os.path.isdir(os.path.join(NODE_MODULES, "ws"))):
        sys.exit("chat_vs_node.py: needs node and tests/e2e/node_modules/ws "
                 "(./scripts/npm-deps.sh), or --skip-node")
    biggest = max(n for n, _ in plan)
    if nofile[0] < biggest + 100:
        sys.exit(f"chat_vs_node.py: RLIMIT_NOFILE hard limit {nofile[1]} is below "
                 f"{biggest + 100}")

    servers = [("weft", w) for w in workers] + ([] if a.skip_node else [("node", 1)]) + \
        ([("floor", 1)] if a.floor else [])
    results = {"machine": {"cpus": os.cpu_count(), "nofile": nofile,
                           "kernel": os.uname().release, "loadavg_start": bl.loadavg()},
               "args": vars(a), "cases": [], "idle": [], "notes": []}
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="weft-chat-bench-") as tmp:
        client = compile_client(tmp)
        a.floor_exe = compile_floor(tmp) if a.floor else None
        node_ver = "" if a.skip_node else subprocess.run(
            [a.node, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        results["machine"]["node"] = node_ver
        print(f"# chat fan-out: {os.cpu_count()} CPUs, {a.duration:g} s per step "
              f"(+ up to {a.drain:g} s drain), weft {a.weft}, node {node_ver}", flush=True)
        for kind, w in servers:
            for nsubs, rates in plan:
                r = run_case(a, client, kind, w, nsubs, rates, tmp)
                results["cases"].append(r)
                results["notes"] += r["notes"]
                print(f"  {label(r)} n={nsubs}: connected in {r['connect_wall_s']:.1f} s, "
                      f"{r['bytes_per_idle_client']:.0f} B/client, "
                      f"{r['bytes_per_quiet_client']:.0f} B/client after {a.quiet:g} s "
                      f"({time.monotonic() - t_start:.0f} s so far)", file=sys.stderr,
                      flush=True)
            if a.idle_clients:
                r = run_case(a, client, kind, w, a.idle_clients, [], tmp, room_each=True)
                results["idle"].append(r)
                results["notes"] += r["notes"]
    results["machine"]["loadavg_end"] = bl.loadavg()
    results["total_s"] = time.monotonic() - t_start
    report(results, a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


def floor_report(results):
    """The goal (Node's fan-out p99 / 10) against the floor server's p99 at the same step: if
    the goal is below the floor, no server that writes each member's copy from one thread can
    meet it on this machine (bench/README.md: what the floor leaves out)."""
    steps = {}  # (subscribers, rate) -> {label: step}
    for r in results["cases"]:
        for st in r["steps"]:
            steps.setdefault((r["subscribers"], st["rate"]), {})[label(r)] = st
    wefts = sorted({label(r) for r in results["cases"] if r["server"] == "weft"})
    rows = []
    for (n, rate), by in steps.items():
        if "node" not in by or "floor" not in by:
            continue
        goal = by["node"]["fanout_us"]["p99"] / 10
        fl = by["floor"]["fanout_us"]["p99"]
        rows.append([f"{n:,}", f"{rate:g}", ms(by["node"]["fanout_us"]["p99"]),
                     f"{goal / 1000:,.2f}", ms(fl), f"{fl / goal:.1f}x" if goal else "-"] +
                    [f"{by[w]['fanout_us']['p99'] / fl:.2f}x" if w in by and fl else "-"
                     for w in wefts] +
                    ["below the floor: out of reach" if goal < fl else "above the floor"])
    if rows:
        print()
        print("The goal against the floor: fan-out p99 goal = Node's p99 / 10, beside the p99 of "
              "bench/floor_ws_server.c at the same step (one frame, one send() per member, one "
              "thread: the least work a server can do)")
        print(bl.fmt_table(["subs", "msg/s", "Node p99 ms", "goal ms", "floor p99 ms",
                            "floor/goal"] + [f"{w}/floor" for w in wefts] + ["goal"], rows))
        print("(floor/goal > 1: even the floor's p99 is above the goal, so no one-thread server "
              "that sends each member its copy meets it on this machine at this step; see "
              "bench/README.md for what the floor leaves out; weft/floor: weft's p99 over the "
              "floor's)")


def report(results, a):
    rows = []
    for r in results["cases"]:
        for st in r["steps"]:
            rows.append([
                label(r), f"{r['subscribers']:,}", f"{st['rate']:g}", f"{st['target_per_s']:,.0f}",
                f"{st['deliveries_per_s']:,.0f}",
                f"{100 * st['delivered'] / st['expected']:.0f}%" if st["expected"] else "-",
                ms(st["fanout_us"]["p50"]), ms(st["fanout_us"]["p99"]),
                ms(st["fanout_us"]["max"]), ms(st["e2e_us"]["p50"]), ms(st["e2e_us"]["p99"]),
                f"{st['server_cpu_s']:.1f}", f"{st['server_cpu_pct']:.0f}%",
                f"{st['server_us_per_delivery']:.2f}" if st["server_us_per_delivery"] else "-",
                f"{st['client_cpu_pct']:.0f}%", f"{st['other_cpu_pct']:.0f}%",
                st["errors"] + st["gaps"] + st["reordered"],
            ])
    if rows:
        print()
        print("Fan-out: one room, one sender at RATE msg/s for "
              f"{a.duration:g} s; deliveries = messages received by the subscribers")
        print(bl.fmt_table(["server", "subs", "msg/s", "target/s", "deliv/s", "done",
                            "fan p50 ms", "fan p99 ms", "fan max ms", "e2e p50 ms", "e2e p99 ms",
                            "srv CPU s", "srv CPU", "srv us/deliv", "client CPU", "other CPU",
                            "errors"], rows))
        print("(deliv/s: deliveries received during the send window / window; done: share of "
              f"the step's deliveries received by {a.drain:g} s after it; fan = receive time - "
              "the server's ts; e2e = receive time - scheduled send time; CPU over window + "
              f"drain, % of one core; {os.cpu_count()} cores)")

    print()
    print("Connecting and memory (B/client = (VmRSS after connecting and 1 s idle, or after "
          f"{a.quiet:g} s quiet - VmRSS before) / subscribers; 'before' is after one warm-up "
          "handshake; the sender is one more connection)")
    rows = []
    for r in results["cases"] + results["idle"]:
        c = r.get("connect", {})
        rows.append([
            label(r), f"{r['subscribers']:,}",
            "own room each" if r["room_each"] else
            ("one room" if r["join_presence"] else "one room, joins not announced"),
            f"{c.get('presence', 0):,}", f"{c.get('stale_join_presence', 0):,}",
            f"{r['connect_wall_s']:.1f}",
            f"{r['connect_server_cpu_s']:.1f}", f"{r['rss_before'] / 1024:,.0f}",
            f"{r['rss_idle'] / 1024:,.0f}", f"{r['bytes_per_idle_client']:,.0f}",
            f"{r['rss_quiet'] / 1024:,.0f}", f"{r['bytes_per_quiet_client']:,.0f}",
            f"{r['rss_after_steps'] / 1024:,.0f}" if r["steps"] else "-",
        ])
    print(bl.fmt_table(["server", "clients", "rooms", "presence deliv", "stale", "connect s",
                        "srv CPU s", "RSS before KiB", "RSS 1 s KiB", "B/client 1 s",
                        f"RSS {a.quiet:g} s KiB", f"B/client {a.quiet:g} s",
                        "RSS after steps KiB"], rows))
    print("(stale: join presence messages a member got for a join that its own \"joined\" had "
          "already counted, i.e. for someone who joined before it)")

    node = {(r["subscribers"]): r for r in results["cases"] if r["server"] == "node"}
    node_idle = [r for r in results["idle"] if r["server"] == "node"]
    if node:
        rows = []
        for r in results["cases"]:
            if r["server"] != "weft" or r["subscribers"] not in node:
                continue
            nr = node[r["subscribers"]]
            nsteps = {st["rate"]: st for st in nr["steps"]}
            for st in r["steps"]:
                ns = nsteps.get(st["rate"])
                if not ns:
                    continue
                dr = st["deliveries_per_s"] / ns["deliveries_per_s"] \
                    if ns["deliveries_per_s"] else float("inf")
                pr = ns["fanout_us"]["p99"] / st["fanout_us"]["p99"] \
                    if st["fanout_us"]["p99"] else float("nan")
                er = ns["e2e_us"]["p99"] / st["e2e_us"]["p99"] \
                    if st["e2e_us"]["p99"] else float("nan")
                rows.append([label(r), f"{r['subscribers']:,}", f"{st['rate']:g}",
                             f"{dr:.1f}x", f"{pr:.1f}x", f"{er:.1f}x",
                             "yes" if dr >= 10 else "no", "yes" if pr >= 10 else "no"])
    if node and rows:
        print()
        print("weft / Node (goals: deliveries/s >= 10x; fan-out p99 <= 1/10 of Node's, i.e. "
              "Node/weft >= 10)")
        print(bl.fmt_table(["weft", "subs", "msg/s", "deliv/s weft/Node", "fan p99 Node/weft",
                            "e2e p99 Node/weft", ">=10x deliv", "p99 goal"], rows))
        print("(at a rate both servers keep up with, deliv/s is the target for both and the "
              "ratio is 1 by construction: the >= 10x goal is read at the rate Node falls "
              "behind)")
    floor_report(results)
    mem_rows = []
    for r in results["cases"] + results["idle"]:
        if r["server"] != "weft":
            continue
        nr = node_idle[0] if r["room_each"] and node_idle else \
            None if r["room_each"] else node.get(r["subscribers"])
        n = nr["bytes_per_quiet_client"] if nr else None
        w = r["bytes_per_quiet_client"]
        mem_rows.append([
            label(r), f"{r['subscribers']:,}",
            "own room each" if r["room_each"] else "one room, after the join storm",
            f"{r['bytes_per_idle_client']:,.0f}", f"{w:,.0f}",
            "-" if n is None else f"{n:,.0f}" + ("" if nr["join_presence"] else " (no storm)"),
            f"{n / w:.1f}x" if n and w > 0 else "-", "yes" if w <= 512 else "no"])
    if mem_rows:
        print()
        print(f"Idle memory per connected client, 1 s and {a.quiet:g} s after the last join was "
              "delivered (goal: <= 512 B at the latter); Node's at the same point, same run")
        print(bl.fmt_table(["weft", "clients", "rooms", "B/client 1 s", f"B/client {a.quiet:g} s",
                            "Node B/client", "Node/weft", "<= 512 B"], mem_rows))
        if any("no storm" in r[5] for r in mem_rows):
            print("(no storm: Node ran --no-join-presence at that size, so it never had the "
                  "storm's traffic; see --node-join-presence-max)")
    for n in results["notes"]:
        print(f"note: {n}")
    print(f"\n(total {results['total_s']:.0f} s; load average {results['machine']['loadavg_start']}"
          f" at start, {results['machine']['loadavg_end']} at end)")


if __name__ == "__main__":
    main()
