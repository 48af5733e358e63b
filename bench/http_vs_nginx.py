#!/usr/bin/python3
"""weft's http service beside nginx, driven by wrk in one run: requests/s, latency, the servers'
CPU seconds and requests per CPU-second; /sleep and POST /reverse on weft; optionally (--callgrind)
instructions per request of both under valgrind's callgrind.

    bench/http_vs_nginx.py [--weft build-bench/weft] [--workers 1,2] [--duration 10]
                           [--repeat 3] [--pin] [--callgrind] [--uring] [--no-floor]
                           [--nginx-deferred] [--json FILE]

The floor server (bench/floor_http_server.c, compiled here with gcc -O2 -pthread -luring, one
thread per worker) runs as a further contender: the least work a server could do for keep-alive
GET / (its epoll loop, and with --uring its io_uring loop), so a ratio the floor does not reach
is out of reach here. --pin also reports each one-worker server's whole CPU per request (the busy
time of its core, interrupt work included).

The GET / comparison runs --repeat rounds per case, the servers' order alternating, and reports
the medians and the range of the per-round ratios. See bench/README.md. Everything runs on
127.0.0.1 with ephemeral ports; every process started here is stopped by its PID; the default run
takes about seven minutes, 7.5 with --callgrind."""

import argparse
import json
import os
import re
import resource
import selectors
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

# the project's goal: weft's req/CPU-s at least this many times nginx's
GOAL_REQ_PER_CPU = 1.5

# the figures of one run whose median over the rounds stands for a server in a case
MEDIAN_KEYS = ("rps", "p50_s", "p99_s", "requests", "wall_s", "server_cpu_s", "server_sys_s",
               "cpu_us_per_req", "sys_share", "req_per_cpu_s", "wrk_cpu_pct", "server_cpu_pct",
               "other_cpu_pct", "core_us_per_req", "req_per_core_s")

FLOOR_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor_http_server.c")

REVERSE_LUA = """wrk.method = "POST"
wrk.body = '{"a":"hello","b":"world"}'
wrk.headers["Content-Type"] = "application/json"
"""


# ---- nginx ----

def nginx_conf(tmp, name, workers, port, single=False, deferred=False):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    lines = []
    if single:
        # one process, in the foreground: what valgrind can follow
        lines += ["master_process off;", "daemon off;"]
    lines += [
        f"worker_processes {workers};",
        f"pid {d}/nginx.pid;",
        f"error_log {d}/error.log warn;",
        "events { worker_connections 4096; }",
        "http {",
        "    access_log off;",
        f"    client_body_temp_path {d}/body;",
        f"    proxy_temp_path {d}/proxy;",
        f"    fastcgi_temp_path {d}/fastcgi;",
        f"    uwsgi_temp_path {d}/uwsgi;",
        f"    scgi_temp_path {d}/scgi;",
        f"    server {{ listen 127.0.0.1:{port}{' deferred' if deferred else ''}; "
        'location = / { return 200 "Hello, World!"; } }',
        "}",
    ]
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    return conf, d


def wait_port(port, timeout, proc=None):
    """Waits until 127.0.0.1:port accepts a connection (the probe is closed at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


class Nginx:
    def __init__(self, tmp, workers, deferred=False):
        self.port = bl.free_port()
        self.conf, self.dir = nginx_conf(tmp, f"nginx-w{workers}", workers, self.port,
                                         deferred=deferred)
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", self.conf, "-g", "daemon off;"],
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        if not wait_port(self.port, 10, self.proc):
            self.stop()
            raise RuntimeError("nginx did not start: " + open(os.path.join(self.dir, "stderr.log"))
                               .read() + open(os.path.join(self.dir, "error.log")).read())
        deadline = time.monotonic() + 5
        while len(bl.children(self.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.05)

    def pids(self):
        """The master and its workers (the workers are looked up each time)."""
        return [self.pid] + bl.children(self.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: workers finish and exit
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                for p in bl.children(self.pid):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


# ---- the floor server ----

def compile_floor(tmp):
    exe = os.path.join(tmp, "floor_http_server")
    subprocess.run(["gcc", "-O2", "-Wall", "-pthread", "-o", exe, FLOOR_SOURCE, "-luring"],
                   check=True, timeout=120)
    return exe


class Floor:
    """bench/floor_http_server.c: the least work a server could do for the GET / cases (epoll,
    or io_uring with uring=True), with one thread per worker."""

    def __init__(self, exe, threads, uring=False):
        self.proc = subprocess.Popen([exe, "--threads", str(threads)]
                                     + (["--uring"] if uring else []), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.pid = self.proc.pid
        line = self.proc.stdout.readline()
        m = re.match(r"listening http 127\.0\.0\.1:(\d+)$", line.strip())
        if not m:
            self.stop()
            raise RuntimeError(f"floor server did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(m.group(1))

    def stop(self):
        """SIGTERM; returns (exit code, its counts line)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=5)
        return self.proc.returncode, err.strip()


# ---- wrk ----

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_dur(s):
    m = re.match(r"([\d.]+)(us|ms|s|m|h)$", s)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def pin(pids, cpus):
    """Binds every thread of the processes pids to the CPUs cpus (threads started later inherit
    it from theirs)."""
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), cpus)


def run_wrk(url, conns, duration, pids_fn, headers=(), script=None, threads=1, cpus=None):
    """One wrk run (-t1 unless told), on the CPUs cpus if given. pids_fn() gives the server's
    PIDs, whose CPU time is summed."""
    args = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for h in headers:
        args += ["-H", h]
    if script:
        args += ["-s", script]
    args.append(url)
    pids = pids_fn()
    # --pin puts wrk on CPU 1 and the server on CPU 0: then CPU 0's busy time is the server's
    core = 0 if cpus == {1} else None
    core0 = bl.cpu_busy(core) if core is not None else 0.0
    cpu0, sys0 = bl.tree_cpu(pids), bl.tree_stime(pids)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m0 = bl.machine_cpu()
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60,
                       preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m1 = bl.machine_cpu()
    core1 = bl.cpu_busy(core) if core is not None else 0.0
    # processes that appeared during the run (none expected) count from zero
    pids1 = sorted(set(pids) | set(pids_fn()))
    cpu1, sys1 = bl.tree_cpu(pids1), bl.tree_stime(pids1)
    out = p.stdout
    r = {"conns": conns, "wrk_rc": p.returncode, "wall_s": wall}
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    r["requests"] = int(m.group(1)) if m else 0
    r["wrk_secs"] = parse_dur(m.group(2)) if m else float("nan")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        r[f"p{pct}_s"] = parse_dur(m.group(1)) if m else float("nan")
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                  map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    r["server_cpu_s"] = cpu1 - cpu0
    r["server_sys_s"] = sys1 - sys0
    # CPU microseconds per request, and the part spent in the kernel (stime; tick-sampled, so
    # a share, not an exact split)
    r["cpu_us_per_req"] = 1e6 * r["server_cpu_s"] / r["requests"] if r["requests"] else float("nan")
    r["sys_share"] = r["server_sys_s"] / r["server_cpu_s"] if r["server_cpu_s"] > 0 else float("nan")
    r["req_per_cpu_s"] = r["requests"] / r["server_cpu_s"] if r["server_cpu_s"] > 0 else float("nan")
    # pinned: everything the server's core did per request, the server's own CPU time and the
    # interrupt work (softirqs, skb frees, wake-ups) that ran there while it slept
    core_s = core1 - core0
    r["core_us_per_req"] = (1e6 * core_s / r["requests"] if core is not None and r["requests"]
                            else float("nan"))
    r["req_per_core_s"] = (r["requests"] / core_s if core is not None and core_s > 0
                           else float("nan"))
    r["wrk_cpu_pct"] = 100 * ((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)) / wall
    r["server_cpu_pct"] = 100 * r["server_cpu_s"] / wall
    r["other_cpu_pct"] = max(0.0, 100 * ((m1[0] - m0[0]) - r["server_cpu_s"]) / wall
                             - r["wrk_cpu_pct"])
    if p.returncode != 0 or not r["requests"]:
        r["wrk_output"] = out + p.stderr
    return r


# ---- rounds ----

def med(xs):
    """bl.median of the values that are numbers (nan when none is)."""
    xs = [x for x in xs if x == x]
    return bl.median(xs) if xs else float("nan")


def summarize(runs):
    """One server's runs of one case as one dict: the median of each figure over the rounds,
    the errors summed, and every run under "runs"."""
    s = {k: runs[0][k] for k in ("server", "workers", "case", "conns")}
    s.update({k: med([r[k] for r in runs]) for k in MEDIAN_KEYS})
    s["socket_errors"] = {k: sum(r["socket_errors"].get(k, 0) for r in runs)
                          for k in ("connect", "read", "write", "timeout")}
    s["non2xx"] = sum(r["non2xx"] for r in runs)
    s["wrk_rc"] = next((r["wrk_rc"] for r in runs if r["wrk_rc"]), 0)
    s["runs"] = runs
    return s


def compare_case(servers, i, case, workers, a, cpus):
    """Case i of the GET / comparison, a.repeat rounds of one wrk run per server. Returns
    {server: summarize(its runs)}."""
    label, conns, hdrs = case
    names = list(servers)
    runs = {name: [] for name in names}
    for rnd in range(a.repeat):
        # alternate which server goes first, by case and by round, so slow drift of the
        # machine's load does not always favour the same one
        order = names if (i + rnd) % 2 == 0 else names[::-1]
        for name in order:
            base, pids = servers[name]
            r = run_wrk(base + "/", conns, a.duration, pids, headers=hdrs, cpus=cpus)
            r.update(server=name, workers=workers, case=label, round=rnd)
            runs[name].append(r)
            print(f"  ran {name} workers={workers} {label} c={conns} round {rnd + 1}/{a.repeat}: "
                  f"{r['rps']:.0f} req/s", file=sys.stderr, flush=True)
    return {name: summarize(rs) for name, rs in runs.items()}


def ratio_of(x, y):
    return x / y if y else float("nan")


def round_ratios(pair, name, key):
    """pair[name][key] / nginx's, round by round (the runs of a round ran side by side)."""
    return [ratio_of(w[key], n[key]) for w, n in zip(pair[name]["runs"], pair["nginx"]["runs"])]


def span(xs):
    xs = [x for x in xs if x == x]
    return f"{min(xs):.2f}–{max(xs):.2f}" if xs else "-"


# ---- callgrind ----

def drive_requests(port, total, conns=50, timeout=300.0):
    """Sends exactly `total` keep-alive GET / requests over `conns` connections, one in flight per
    connection (like wrk without pipelining). Returns (ok responses, seconds)."""
    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    sel = selectors.DefaultSelector()
    state = {}
    sent = 0
    t0 = time.monotonic()
    for _ in range(min(conns, total)):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        state[s] = bytearray()
        sel.register(s, selectors.EVENT_READ)
    for s in state:
        s.send(req)
        sent += 1
    ok = done = 0
    deadline = t0 + timeout
    while done < total and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            s = key.fileobj
            data = s.recv(65536)
            if not data:
                raise RuntimeError(f"server closed a connection after {done} responses")
            buf = state[s]
            buf += data
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = bytes(buf[:end]).decode("latin-1")
                m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                blen = int(m.group(1)) if m else 0
                if len(buf) < end + 4 + blen:
                    break
                ok += head.startswith("HTTP/1.1 200")
                done += 1
                del buf[:end + 4 + blen]
                if sent < total:
                    s.send(req)
                    sent += 1
    secs = time.monotonic() - t0
    sel.close()
    for s in state:
        s.close()
    return ok, done, secs


def callgrind_total(path):
    """Total Ir from a callgrind output file."""
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def function_costs(path):
    """Self Ir per function of a callgrind output file, from callgrind_annotate."""
    p = subprocess.run(["callgrind_annotate", "--threshold=100", path], capture_output=True,
                       text=True, timeout=120)
    costs = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(\S.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            name = re.sub(r"^.*:(?=[^:\[]+ \[)", "", m.group(2).strip())
            name = re.sub(r"\[/\S*/([^/\]]+)\]$", r"[\1]", name)
            costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


def top_functions(path, base_path, n, per):
    """The n functions with the most self Ir in a run minus its baseline run, as
    (Ir per request, name)."""
    if not shutil.which("callgrind_annotate"):
        return []
    run, base = function_costs(path), function_costs(base_path)
    diff = sorted(((v - base.get(k, 0), k) for k, v in run.items()), reverse=True)
    return [(ir / per, name) for ir, name in diff[:n]]


def callgrind_one(kind, binary, tmp, requests, hold_s=None):
    """Runs weft or nginx under callgrind; sends `requests` GET / (0 for a baseline that idles
    hold_s seconds). Returns (total Ir, ok responses, seconds of load, out file)."""
    out = os.path.join(tmp, f"callgrind.{kind}.{requests}.out")
    vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    log = os.path.join(tmp, f"callgrind.{kind}.{requests}.log")
    if kind == "weft":
        srv = bl.Weft(binary, 1, services=("http",), wrapper=vg, ready_timeout=120, log_path=log)
        port = srv.ports["http"]
    else:
        port = bl.free_port()
        conf, d = nginx_conf(tmp, f"nginx-cg-{requests}", 1, port, single=True)
        logf = open(log, "w")
        proc = subprocess.Popen(vg + ["nginx", "-p", d, "-c", conf], stdout=logf, stderr=logf,
                                stdin=subprocess.DEVNULL)
        if not wait_port(port, 120, proc):
            proc.kill()
            proc.wait()
            raise RuntimeError("nginx under valgrind did not start: " + open(log).read()[-2000:])
    try:
        if kind == "weft":
            # the same probe connection the nginx run makes, so both baselines match
            wait_port(port, 5)
        if requests:
            ok, done, secs = drive_requests(port, requests)
        else:
            time.sleep(hold_s or 0)
            ok, done, secs = 0, 0, hold_s or 0
    finally:
        if kind == "weft":
            rc = srv.stop(timeout=120)
        else:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            rc = proc.returncode
            logf.close()
    if rc != 0:
        raise RuntimeError(f"{kind} under valgrind exited {rc}: " + open(log).read()[-2000:])
    return callgrind_total(out), ok, done, secs, out


def callgrind_section(binary, tmp, n):
    res = {}
    for kind in ("weft", "nginx"):
        total, ok, done, secs, out = callgrind_one(kind, binary, tmp, n)
        base, _, _, _, bout = callgrind_one(kind, binary, tmp, 0, hold_s=secs)
        res[kind] = {"requests": n, "ok": ok, "done": done, "load_s": secs, "ir_total": total,
                     "ir_baseline": base, "ir_per_request": (total - base) / n,
                     "top": top_functions(out, bout, 10, n)}
        print(f"  callgrind {kind}: {(total - base) / n:,.0f} Ir/request", file=sys.stderr,
              flush=True)
    return res


# ---- report ----

def pair_names(pair):
    """The servers of one comparison, weft first and nginx last."""
    return [k for k in ("weft", "weft-uring", "floor", "floor-uring", "nginx") if k in pair]


def ms(x):
    return f"{x * 1e3:.2f}"


def errs(r):
    e = sum(r["socket_errors"].values()) + r["non2xx"]
    return str(e) if not e else f"{e}*"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weft", default=bl.DEFAULT_WEFT, help="weft binary (default: %(default)s)")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds of the GET / comparison per case; medians reported")
    ap.add_argument("--callgrind", action="store_true", help="also count instructions/request")
    ap.add_argument("--callgrind-requests", type=int, default=20000)
    ap.add_argument("--callgrind-only", action="store_true", help="skip the wrk runs")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--pin", action="store_true",
                    help="one worker: servers on CPU 0, wrk on CPU 1 (two workers: not pinned)")
    ap.add_argument("--uring", action="store_true",
                    help="also run weft --io uring as a third server in every comparison")
    ap.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                    help="also run bench/floor_http_server.c, the least work a server could do "
                         "for GET / (with --uring its io_uring loop too), as the floor to read "
                         "the goal against (default: on; --no-floor skips it)")
    ap.add_argument("--nginx-deferred", action="store_true",
                    help="nginx listens with 'deferred' (TCP_DEFER_ACCEPT), as weft does by default")
    a = ap.parse_args()

    if a.repeat < 1:
        sys.exit("http_vs_nginx.py: --repeat must be at least 1")
    workers = [int(w) for w in a.workers.split(",")]
    bl.raise_nofile()
    need = ["wrk", "nginx"] + (["valgrind"] if a.callgrind or a.callgrind_only else [])
    for tool in need:
        if not shutil.which(tool):
            sys.exit(f"http_vs_nginx.py: {tool} not found (./scripts/deps.sh bench)")
    if not os.access(a.weft, os.X_OK):
        sys.exit(f"http_vs_nginx.py: no weft binary at {a.weft} (build it first)")

    results = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
               "duration_s": a.duration, "repeat": a.repeat, "pin": a.pin,
               "nginx_deferred": a.nginx_deferred, "floor": a.floor, "compare": [],
               "weft_only": [],
               "notes": []}
    t_start = time.monotonic()
    print(f"# weft vs nginx: {os.cpu_count()} CPUs, wrk -t1 -d{a.duration}s, "
          f"{a.repeat} rounds, weft {a.weft}"
          + (" (one worker: servers pinned to CPU 0, wrk to CPU 1)" if a.pin else "")
          + (", nginx with 'listen ... deferred'" if a.nginx_deferred else ""),
          flush=True)
    with tempfile.TemporaryDirectory(prefix="weft-http-bench-") as tmp:
        lua = os.path.join(tmp, "reverse.lua")
        with open(lua, "w") as f:
            f.write(REVERSE_LUA)
        floor_exe = compile_floor(tmp) if a.floor and not a.callgrind_only else None
        for w in ([] if a.callgrind_only else workers):
            wlog = os.path.join(tmp, f"weft-w{w}.log")
            weft = bl.Weft(a.weft, w, services=("http", "admin"), log_path=wlog)
            wuring = None
            ngx = None
            floors = {}
            try:
                if a.uring:
                    ulog = os.path.join(tmp, f"weft-uring-w{w}.log")
                    wuring = bl.Weft(a.weft, w, extra=("--io", "uring"), services=("http",),
                                     log_path=ulog)
                ngx = Nginx(tmp, w, deferred=a.nginx_deferred)
                servers = {
                    "weft": (f"http://127.0.0.1:{weft.ports['http']}", lambda: [weft.pid]),
                    "nginx": (f"http://127.0.0.1:{ngx.port}", ngx.pids),
                }
                if wuring:
                    servers["weft-uring"] = (f"http://127.0.0.1:{wuring.ports['http']}",
                                             lambda: [wuring.pid])
                if floor_exe:
                    for name, uring in (("floor", False), ("floor-uring", True)):
                        if uring and not a.uring:
                            continue
                        f = floors[name] = Floor(floor_exe, w, uring)
                        servers[name] = (f"http://127.0.0.1:{f.port}", lambda f=f: [f.pid])
                # --pin (one worker): the servers on CPU 0, wrk on CPU 1, a core each
                wrk_cpus = None
                if a.pin and w == 1:
                    for _, pids in servers.values():
                        pin(pids(), {0})
                    wrk_cpus = {1}
                cases = [("keep-alive", 100, ()), ("keep-alive", 1000, ()),
                         ("close", 100, ("Connection: close",))]
                for i, case in enumerate(cases):
                    results["compare"].append(compare_case(servers, i, case, w, a, wrk_cpus))
                base = f"http://127.0.0.1:{weft.ports['http']}"
                # /sleep leaves the server idle most of the time; the answers that come due
                # together reach wrk in a burst, and one wrk thread (~15 us per answer) then
                # holds the next requests back: -t2 shows the server without that limit.
                for t in (1, 2):
                    r = run_wrk(base + "/sleep?ms=10", 100, a.duration, lambda: [weft.pid],
                                threads=t, cpus=wrk_cpus)
                    r.update(server="weft", workers=w, case=f"GET /sleep?ms=10 (wrk -t{t})")
                    r["pct_of_ideal"] = 100 * r["rps"] / (100 / 0.010)
                    results["weft_only"].append(r)
                r = run_wrk(base + "/reverse", 1000, a.duration, lambda: [weft.pid], script=lua,
                            cpus=wrk_cpus)
                r.update(server="weft", workers=w, case="POST /reverse")
                results["weft_only"].append(r)
                print(f"  ran weft workers={w} sleep and reverse", file=sys.stderr, flush=True)
            finally:
                rc = weft.stop()
                urc = wuring.stop() if wuring else 0
                nrc = ngx.stop() if ngx else None
                for name, f in floors.items():
                    frc, counts = f.stop()
                    results["notes"].append(f"{name} workers={w}: exit {frc}; {counts}")
            if urc != 0:
                results["notes"].append(f"weft --io uring workers={w}: exit {urc}")
            odd = bl.odd_log_lines(open(wlog).read())
            if rc != 0 or odd:
                results["notes"].append(f"weft workers={w}: exit {rc}; log: {odd[:5]}")
            if nrc not in (0, None):
                results["notes"].append(f"nginx workers={w}: exit {nrc}")
        if a.callgrind or a.callgrind_only:
            results["callgrind"] = callgrind_section(a.weft, tmp, a.callgrind_requests)

    if results["compare"]:
        print()
        print(f"GET /, median of {a.repeat} rounds (wrk -t1; server CPU = utime+stime of all the "
              "server's processes over the run; req/CPU-s = requests / server CPU seconds)")
        rows = []
        for pair in results["compare"]:
            for name in pair_names(pair):
                r = pair[name]
                rows.append([r["workers"], r["case"], r["conns"], name, f"{r['rps']:,.0f}",
                             ms(r["p50_s"]), ms(r["p99_s"]), f"{r['server_cpu_s']:.2f}",
                             f"{r['req_per_cpu_s']:,.0f}",
                             f"{r.get('cpu_us_per_req', float('nan')):.1f}",
                             f"{100 * r.get('sys_share', float('nan')):.0f}%",
                             f"{r['wrk_cpu_pct']:.0f}%", f"{r['other_cpu_pct']:.0f}%"]
                            + ([f"{r['core_us_per_req']:.1f}"] if a.pin else []) + [errs(r)])
        print(bl.fmt_table(["workers", "case", "conns", "server", "req/s", "p50 ms", "p99 ms",
                            "CPU s", "req/CPU-s", "CPU µs/req", "in kernel", "wrk CPU",
                            "other CPU"] + (["core µs/req"] if a.pin else []) + ["errors"], rows))
        if a.pin:
            print("core µs/req (one worker, pinned): the busy time of the server's CPU per "
                  "request, its own CPU time and the interrupt work that ran there while it "
                  "slept, which the kernel charges to no process")
        print()
        print(f"Ratio weft / nginx (> 1: weft better): ratio of the medians, and the range of "
              f"the {a.repeat} rounds' ratios (each within one round); goal: req/CPU-s ratio "
              f">= {GOAL_REQ_PER_CPU}")
        rows = []
        for pair in results["compare"]:
            nr = pair["nginx"]
            for name in pair_names(pair):
                if name == "nginx":
                    continue
                wr = pair[name]
                sfx = "" if name == "weft" else "_" + name.replace("-", "_")
                row = [wr["workers"], wr["case"], wr["conns"], name]
                for key, col in (("rps", "ratio_rps"), ("req_per_cpu_s", "ratio_req_per_cpu"),
                                 ("req_per_core_s", "ratio_req_per_core")):
                    pair[col + sfx] = ratio_of(wr[key], nr[key])
                    pair[col + "_rounds" + sfx] = round_ratios(pair, name, key)
                    if col != "ratio_req_per_core" or a.pin:
                        row += [f"{pair[col + sfx]:.2f}", span(pair[col + "_rounds" + sfx])]
                goal = sum(x >= GOAL_REQ_PER_CPU for x in pair["ratio_req_per_cpu_rounds" + sfx])
                pair["rounds_at_goal" + sfx] = goal
                rows.append(row + [f"{goal}/{a.repeat}"])
        print(bl.fmt_table(["workers", "case", "conns", "server", "req/s ratio", "range",
                            "req/CPU-s ratio", "range"]
                           + (["req/core-s ratio", "range"] if a.pin else [])
                           + [f">= {GOAL_REQ_PER_CPU}x"], rows))
        if a.floor:
            print("(floor, floor-uring: bench/floor_http_server.c, the least work a server "
                  "could do for keep-alive GET /: its ratio is about the most any server can "
                  "show in that case on this machine)")
        if a.pin:
            print("(req/core-s: requests per busy second of the server's core, one worker)")
        print()
        print("weft only")
        rows = []
        for r in results["weft_only"]:
            extra = f"{r['pct_of_ideal']:.1f}% of ideal 10,000 req/s" if "pct_of_ideal" in r else ""
            rows.append([r["workers"], r["case"], r["conns"], f"{r['rps']:,.0f}", ms(r["p50_s"]),
                         ms(r["p99_s"]), f"{r['server_cpu_s']:.2f}", f"{r['wrk_cpu_pct']:.0f}%",
                         errs(r), extra])
        print(bl.fmt_table(["workers", "case", "conns", "req/s", "p50 ms", "p99 ms", "CPU s", "wrk CPU",
                         "errors", ""], rows))
    if "callgrind" in results:
        cg = results["callgrind"]
        print()
        n = a.callgrind_requests
        print(f"callgrind: {n:,} keep-alive GET / over 50 connections, --workers 1 / "
              "worker_processes 1 (master_process off); Ir = user-space instructions, "
              "baseline (start, idle as long, stop) subtracted")
        rows = [[k, f"{v['ok']:,}", f"{v['ir_total']:,}", f"{v['ir_baseline']:,}",
                 f"{v['ir_per_request']:,.0f}"] for k, v in cg.items()]
        print(bl.fmt_table(["server", "200 responses", "Ir total", "Ir baseline", "Ir/request"],
                        rows))
        ratio = cg["weft"]["ir_per_request"] / cg["nginx"]["ir_per_request"]
        results["callgrind_ratio_weft_nginx"] = ratio
        print(f"Ir/request ratio weft / nginx: {ratio:.2f} (< 1: weft runs fewer instructions)")
        for k, v in cg.items():
            print(f"  top self-cost functions, {k} (Ir per request, baseline subtracted):")
            for ir, fn in v["top"]:
                print(f"    {ir:8,.0f}  {fn}")
    compare_runs = [r for p in results["compare"] for k in pair_names(p) for r in p[k]["runs"]]
    for r in compare_runs + results["weft_only"]:
        if sum(r["socket_errors"].values()) or r["non2xx"] or r["wrk_rc"]:
            rnd = f" round {r['round'] + 1}" if "round" in r else ""
            results["notes"].append(
                f"{r['server']} workers={r['workers']} {r['case']} c={r['conns']}{rnd}: socket "
                f"errors {r['socket_errors']}, non-2xx {r['non2xx']}, wrk exit {r['wrk_rc']}")
    for note in results["notes"]:
        print(f"note: {note}")
    print(f"\n(total {time.monotonic() - t_start:.0f} s)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
