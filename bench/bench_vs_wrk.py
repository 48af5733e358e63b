#!/usr/bin/python3
"""weft bench beside wrk, in one run against the same nginx: top request rate with 1 and 2
threads, latency at about 50 % of that rate, and latency at the same offered load in closed
loop with a think time.

    bench/bench_vs_wrk.py [--weft build-bench/weft] [--threads 1,2] [--conns 50,100]
                          [--nginx-workers 1] [--busy-poll 50] [--duration 5] [--repeat 3]
                          [--lat-duration 3] [--lat-repeat 5] [--no-think] [--json FILE]

The server. One nginx (Debian's nginx-light, `location = / { return 200 "Hello, World!"; }`,
started from a generated config in a temporary directory, as bench/http_vs_nginx.py does) on a
free port of 127.0.0.1, the same process for every run, stopped by its master's PID at the end.
It has one worker by default: on this 2-core machine one core is then the server's and the other
is left to the load generator, so a generator that costs less CPU per request leaves the server
more room and shows it as rate. With two nginx workers the server, the generator's threads and
the kernel's loopback work all compete for the same two cores and the scheduler decides more of
the result (`--nginx-workers 2` to see it).

Top rate. For each thread count T (with C connections: 50 for 1 thread, 100 for 2), `wrk -tT
-cC -dDs` and `weft bench closed -t T -c C -d D` take turns, --repeat times each (the tool that
goes first alternates), after a 1 s warm-up. Reported: the median req/s of each tool, the ratio
weft bench / wrk (goal: >= 1), each tool's own CPU (utime + stime of its process from wait4,
over its wall time; % of one core) and per request, the nginx worker's CPU, and *other CPU* (the
machine's busy time from /proc/stat minus nginx and the tool): the machine is shared, and when
other CPU is high every figure is low, which is why the tools alternate and medians are taken.
With --busy-poll US (default 50; 0 leaves it out) `weft bench --busy-poll US` is a third
contender in the same rotation, in a table of its own with nginx's CPU microseconds per
request under each tool: on loopback nginx's send runs the client's receive path, waking the
client's thread included, so the more a client sleeps the more nginx pays per request (wrk,
busy 99 % of the time, is rarely asleep; weft bench, cheaper per request, often is).
Beside them, each tool's mean latency and conns / rate, the time one connection's cycle takes by
Little's law. weft bench's mean equals it: it writes the next request as soon as it has read a
response, and its clock starts there. wrk's differs both ways: it writes the next request on its
loop's next pass (after re-arming EPOLLOUT), a wait its latency does not see, and it adds
synthetic samples (below), which raise its mean.

Latency at 50 % load. wrk 4 (Debian's) has no rate option, so the load is set by the number of
connections in closed loop. The target is half of wrk's median top rate at that thread count.
A short sweep (C in T x {1, 2, 3, 4, 6}, two 1 s runs per tool and count, the better of the two,
as a disturbance only ever lowers a rate; then the running maximum over C, as a closed loop does
not slow down when connections are added) finds the connection count whose wrk rate is nearest
the target (c_wrk) and the one whose weft bench rate is nearest it (c_weft). Against a server
this fast one connection per thread may already load it well past half its top rate: that is
the lowest load a closed loop can make, and the tables show the share of the top rate reached.
Then --lat-repeat times (5 x 3 s), in turns:

- wrk and weft bench, closed loop, the same threads and c_wrk connections: the comparison the
  issue asks for (same offered concurrency); both tools count from the request's write to the
  response's end;
- weft bench closed at c_weft, when it differs: the nearest whole connection count to the same
  *rate* as wrk. The two tools do not put the same load on the server at the same connection
  count: wrk records a response, re-arms EPOLLOUT and writes the next request on its loop's next
  pass (its latency clock starts at that write), while weft bench writes the next request as
  soon as it has read the response. At the same count weft bench keeps more requests at the
  server, gets a higher rate, and its requests queue more;
- weft bench open loop at the target rate (`--rps`, `--concurrency C`), latency corrected (from
  the scheduled start) and uncorrected (from the write), for reference: what wrk2 would measure.

Reported: median req/s and the median over the repetitions of each percentile (p50, p90, p99;
wrk prints 50/75/90/99 %), and the ratios weft bench / wrk (goal: within 10 %, 0.90..1.10).

The tails: after the run wrk 4 corrects its closed-loop latencies for coordinated omission:
with E its mean cycle per connection (run time x connections / requests), every sample n > 2E
adds synthetic samples at n - E, n - 2E, ... down to the last above E (stats_correct() in wrk's
src/stats.c; E is in the JSON as wrk_interval_ms), and it prints only the corrected figures.
weft bench closed records what it measured; with `--co-correct` (used here) it also reports the
same correction of the same run. One stall of 1 ms at E = 80 us puts a dozen samples into wrk's
tail and one into weft bench's measured one, so the like-for-like comparison of p90 and p99 is
wrk against weft bench's co-corrected row; both are in the tables.
At these loads a request takes 30-300 us, so a few microseconds of either tool's loop, or one
preemption by another job on the machine, move the ratios: read them with the other-CPU column.

At equal offered load, closed loop with think time. Setting the load by connection count leaves
the two tools at different rates (each count gives what it gives). With a think time both can
offer the same load: wrk runs a script whose delay() returns D (wrk waits D ms after each
response before the connection's next request; its latency clock starts at that write), and
weft bench runs `closed --think Dms`, the same. wrk's delay() is in whole milliseconds (its
timers, Redis's ae, have no finer resolution and fire on the ticks of a millisecond clock). Per
thread count T: the target is half of wrk's median top rate; D = C / target rounded to whole
milliseconds (C the top-rate count, D >= 1), then C' = target x D rounded to a multiple of T (wrk
gives each thread C' / T, rounded down); one 1 s wrk run with D and C' corrects C' once in
proportion to its rate (each cycle also holds the response's latency and wrk's loop passes, so
the rate falls short of C' / D). Then --lat-repeat turns of --lat-duration s, each:

- wrk -tT -cC' with the delay script;
- weft bench closed -t T -c C' --think D: the same settings;
- weft bench closed with the think time D + (wrk's cycle - weft bench's cycle) from the two runs
  before it in the turn (cycle = C' / rate): at the same think time wrk's cycle comes out longer
  (it starts the delay one loop pass after reading a response and writes one pass after the
  timer fires, and its latency is higher), so it offers a lower rate; this run offers wrk's;
- wrk again: the A/A control, how far wrk agrees with itself, its two runs bracketing weft
  bench's in time.

Reported: medians of req/s, cycle, p50, p90 and p99 per run kind, weft bench's `--co-correct`
figures of the same runs, the ratios weft bench / wrk (first) and wrk (second) / wrk (first)
with the ones within 10 % named, and each run's p99 (the spread). wrk prints its percentiles
after stats_correct(), but here its interval E includes the think time (E = run time x
connections / requests, a few ms), so only answers slower than 2E get synthetic samples, and its
figures are close to what it measured: weft bench's co-corrected row, the same correction of its
own runs, shows how much. --no-think leaves the section out.

Everything runs on 127.0.0.1; every process is started here and stopped by its PID; a default
run takes about 6 minutes (3.5 with --no-think). See bench/README.md."""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from http_vs_nginx import Nginx, parse_dur  # noqa: E402

SWEEP_FACTORS = (1, 2, 3, 4, 6)
SWEEP_RUNS = 2


def run_wrk(url, threads, conns, duration, script=None):
    args = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    args += (["-s", script] if script else []) + [url]
    p = bl.run_rusage(args, duration + 30)
    out = p["out"]
    r = {"tool": "wrk", "mode": "closed", "rc": p["rc"], "wall_s": p["wall_s"],
         "cpu_s": p["cpu_s"]}
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    r["requests"] = int(m.group(1)) if m else 0
    # the expected interval wrk's stats_correct() uses: its mean cycle per connection
    r["wrk_interval_ms"] = (1e3 * parse_dur(m.group(2)) * conns / r["requests"]
                            if r["requests"] else float("nan"))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        r[f"p{pct}_ms"] = parse_dur(m.group(1)) * 1e3 if m else float("nan")
    m = re.search(r"^\s+Latency\s+(\S+)", out, re.M)
    r["mean_ms"] = parse_dur(m.group(1)) * 1e3 if m else float("nan")
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(map(int, m.groups()))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    r["errors"] = errors
    if p["rc"] != 0 or not r["requests"]:
        r["output"] = out + p["err"]
    return r


BUSY = "wb --busy-poll"


def run_weft(weft, url, threads, conns, duration, tmp, rps=None, busy_poll=0, think_ms=0):
    jpath = os.path.join(tmp, "bench.json")
    if os.path.exists(jpath):
        os.unlink(jpath)
    if rps is None:
        args = [weft, "bench", "closed", "--co-correct", "-t", str(threads), "-c", str(conns),
                "-d", str(duration)]
    else:
        args = [weft, "bench", "open", "--rps", f"{rps:.0f}", "--concurrency", str(conns), "-t",
                str(threads), "-d", str(duration)]
    if busy_poll:
        args += ["--busy-poll", str(busy_poll)]
    if think_ms:
        args += ["--think", f"{think_ms:g}ms"]
    args += ["--timeout", "5", "--json", jpath, url]
    p = bl.run_rusage(args, duration + 30)
    r = {"tool": BUSY if busy_poll else "weft bench", "mode": "closed" if rps is None else "open",
         "rc": p["rc"],
         "wall_s": p["wall_s"], "cpu_s": p["cpu_s"]}
    try:
        with open(jpath) as f:
            j = json.load(f)
    except (OSError, ValueError):
        r.update(requests=0, rps=0.0, errors=0, output=p["out"] + p["err"])
        for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms"):
            r[k] = float("nan")
        return r
    lat = j.get("latency_ms", {})
    r.update(requests=j.get("requests", 0), rps=j.get("rps", 0.0),
             errors=j.get("errors_total", 0), self_cpu_pct=j.get("cpu_percent"),
             poll_pct=j.get("busy_poll_percent", 0.0),
             p50_ms=lat.get("p50", float("nan")), p90_ms=lat.get("p90", float("nan")),
             p99_ms=lat.get("p99", float("nan")), mean_ms=lat.get("mean", float("nan")))
    if rps is None:
        co = j.get("latency_co_corrected_ms", {})
        r.update(co_p50_ms=co.get("p50", float("nan")), co_p90_ms=co.get("p90", float("nan")),
                 co_p99_ms=co.get("p99", float("nan")), co_added=j.get("co_added", 0))
    else:
        unc = j.get("latency_uncorrected_ms", {})
        r.update(target_rps=rps, dropped=j.get("dropped", 0),
                 unc_p50_ms=unc.get("p50", float("nan")), unc_p90_ms=unc.get("p90", float("nan")),
                 unc_p99_ms=unc.get("p99", float("nan")))
    if p["rc"] != 0:
        r["output"] = p["out"] + p["err"]
    return r


class Bench:
    """Runs either tool against one nginx and adds the CPU figures around each run."""

    def __init__(self, weft, ngx, tmp, busy_poll):
        self.weft, self.ngx, self.tmp, self.busy_poll = weft, ngx, tmp, busy_poll
        self.url = f"http://127.0.0.1:{ngx.port}/"

    def delay_script(self, think_ms):
        """A wrk script whose delay() makes each connection wait think_ms after a response
        (wrk calls it then, and its latency clock starts at the write that follows)."""
        path = os.path.join(self.tmp, f"delay-{think_ms}ms.lua")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(f"function delay()\n  return {think_ms}\nend\n")
        return path

    def run(self, tool, threads, conns, duration, rps=None, think_ms=0):
        pids = self.ngx.pids()
        n0, m0 = bl.tree_cpu(pids), bl.machine_cpu()
        if tool == "wrk":
            r = run_wrk(self.url, threads, conns, duration,
                        self.delay_script(think_ms) if think_ms else None)
        else:
            r = run_weft(self.weft, self.url, threads, conns, duration, self.tmp, rps,
                         self.busy_poll if tool == BUSY else 0, think_ms)
        n1, m1 = bl.tree_cpu(pids), bl.machine_cpu()
        wall = r["wall_s"]
        r.update(threads=threads, conns=conns, duration_s=duration,
                 cpu_pct=100 * r["cpu_s"] / wall, nginx_cpu_pct=100 * (n1 - n0) / wall,
                 nginx_us_per_req=1e6 * (n1 - n0) / r["requests"] if r["requests"] else
                 float("nan"), think_ms=think_ms)
        r["other_cpu_pct"] = max(0.0, 100 * (m1[0] - m0[0]) / wall - r["cpu_pct"]
                                 - r["nginx_cpu_pct"])
        label = f"{tool} {r['mode']} -t {threads} -c {conns}" + (f" --rps {rps:.0f}" if rps else "")
        label += f" think {think_ms:g} ms" if think_ms else ""
        print(f"  {label}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.3f} ms, "
              f"CPU {r['cpu_pct']:.0f}%, nginx {r['nginx_cpu_pct']:.0f}%, "
              f"other {r['other_cpu_pct']:.0f}%", file=sys.stderr, flush=True)
        return r


def summary(runs):
    """Medians over repetitions of one tool at one setting."""
    keys = ["rps", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "cpu_pct", "nginx_cpu_pct",
            "other_cpu_pct", "nginx_us_per_req"]
    keys += [k for k in ("unc_p50_ms", "unc_p90_ms", "unc_p99_ms", "dropped", "co_p50_ms",
                         "co_p90_ms", "co_p99_ms", "co_added", "wrk_interval_ms") if k in runs[0]]
    s = {k: bl.median([r[k] for r in runs]) for k in keys}
    s["runs_rps"] = [round(r["rps"]) for r in runs]
    s["errors"] = sum(r["errors"] for r in runs)
    s["conns"] = runs[0]["conns"]
    # Little's law: in a closed loop each connection's cycle is conns / rate, which the report
    # sets beside the tool's mean latency
    s["cycle_ms"] = 1e3 * s["conns"] / s["rps"] if s["rps"] else float("nan")
    return s


def rotate(items, i):
    i %= len(items)
    return items[i:] + items[:i]


def top_rate(b, threads, conns, duration, repeat, order0):
    tools = ["wrk", "weft bench"] + ([BUSY] if b.busy_poll else [])
    runs = {t: [] for t in tools}
    for i in range(repeat):
        for tool in rotate(tools, order0 + i):
            runs[tool].append(b.run(tool, threads, conns, duration))
    return runs


def nearest(rates, target):
    """The connection count whose rate is nearest the target, on a log scale (half and double
    are equally far)."""
    return min(rates, key=lambda c: (abs(math.log(max(rates[c], 1.0) / target)), c))


def half_load(b, threads, top_conns, target, duration, repeat, order0):
    sweep = {"wrk": {}, "weft bench": {}}
    for i in range(SWEEP_RUNS):
        for k, f in enumerate(SWEEP_FACTORS):
            c = f * threads
            for tool in rotate(["wrk", "weft bench"], order0 + k + i):
                sweep[tool].setdefault(c, []).append(b.run(tool, threads, c, 1)["rps"])
    # A disturbance on this shared machine only ever lowers a rate, so the best of the runs is
    # the estimate of what the tool does at that count; and a closed loop's rate does not fall
    # when connections are added, so the curve is made non-decreasing (the running maximum).
    best = {}
    for tool, by_c in sweep.items():
        best[tool], top = {}, 0.0
        for c in sorted(by_c):
            top = max(top, max(by_c[c]))
            best[tool][c] = top
    c_wrk = nearest(best["wrk"], target)
    c_weft = nearest(best["weft bench"], target)
    cases = [("wrk", c_wrk, None), ("weft bench", c_wrk, None)]
    if c_weft != c_wrk:
        cases.append(("weft bench", c_weft, None))
    cases.append(("weft bench", top_conns, target))
    runs = {case: [] for case in cases}
    for i in range(repeat):
        for case in rotate(cases, order0 + i):
            tool, c, rps = case
            runs[case].append(b.run(tool, threads, c, duration, rps))
    return {"target_rps": target, "sweep": sweep, "sweep_best": best, "c_wrk": c_wrk,
            "c_weft": c_weft,
            "cases": [{"tool": t, "conns": c, "open_rps": r, "runs": runs[(t, c, r)],
                       "median": summary(runs[(t, c, r)])} for (t, c, r) in cases]}


# The equal-load section's runs, in this order in every turn: wrk; weft bench with the same
# think time; weft bench with the think time that gives it wrk's rate; wrk again (the A/A
# control: wrk beside itself, the two runs bracketing weft bench's in time).
THINK_CASES = (("wrk", "wrk"), ("weft bench", "weft bench"), ("weft bench at wrk's rate",
                                                              "weft bench"), ("wrk again", "wrk"))


def conns_for(x, threads):
    """x connections rounded to a multiple of the thread count (wrk gives each thread C / T,
    rounded down), at least one per thread."""
    return max(threads, threads * round(x / threads))


def cycle_ms(r):
    """A closed-loop run's cycle per connection: conns / rate (Little's law)."""
    return 1e3 * r["conns"] / r["rps"] if r["rps"] else float("nan")


def think_load(b, threads, top_conns, top_rps, duration, repeat):
    """Both tools in closed loop with the same think time and connection count, at about half
    of wrk's top rate; and weft bench with its think time stretched to wrk's rate."""
    target = top_rps / 2
    # wrk's delay() is in whole milliseconds (its timers have no finer resolution): the think
    # time that gives the top-rate connection count the target rate, rounded to one, then the
    # count that gives the target with it ...
    think_ms = max(1, round(1e3 * top_conns / target))
    first = conns_for(target * think_ms / 1e3, threads)
    # ... corrected once by a short wrk run, since each cycle also takes the response's latency
    # and wrk's loop passes, not the think time alone (a closed loop's rate at low load grows
    # with the count, so one proportional step is close).
    cal = b.run("wrk", threads, first, 1, think_ms=think_ms)
    factor = min(2.0, max(0.5, target / cal["rps"])) if cal["rps"] else 1.0
    conns = conns_for(first * factor, threads)
    runs = {name: [] for name, _ in THINK_CASES}
    for _ in range(repeat):
        turn = {}
        for name, tool in THINK_CASES:
            think = think_ms
            if name == "weft bench at wrk's rate":
                # The cycle beyond the think time is each tool's own (latency, loop passes):
                # weft bench's think gets what wrk's cycle had more than its own, this turn.
                extra = cycle_ms(turn["wrk"]) - cycle_ms(turn["weft bench"])
                think = round(think_ms + extra, 3) if math.isfinite(extra) else think_ms
                think = max(0.001, think)
            turn[name] = b.run(tool, threads, conns, duration, think_ms=think)
            runs[name].append(turn[name])
    return {"threads": threads, "wrk_top_rps": top_rps, "target_rps": target,
            "think_ms": think_ms, "conns": conns,
            "calibration": {"conns": first, "wrk_rps": cal["rps"]},
            "runs": runs, "median": {name: dict(summary(rs), think_ms=bl.median(
                [r["think_ms"] for r in rs])) for name, rs in runs.items()}}


def ensure_tools(weft, default_weft):
    missing = [t for t in ("wrk", "nginx") if not shutil.which(t)]
    if missing:
        deps = os.path.join(bl.REPO, "scripts", "deps.sh")
        print(f"bench_vs_wrk.py: {', '.join(missing)} missing: {deps} bench", file=sys.stderr)
        subprocess.run([deps, "bench"], check=True, timeout=900)
    if not os.access(weft, os.X_OK):
        if weft != default_weft:
            sys.exit(f"bench_vs_wrk.py: no weft binary at {weft}")
        build = os.path.join(bl.REPO, "build-bench")
        subprocess.run(["cmake", "-S", bl.REPO, "-B", build, "-G", "Ninja",
                        "-DCMAKE_BUILD_TYPE=Release"], check=True, timeout=300)
        subprocess.run(["ninja", "-C", build, "weft"], check=True, timeout=900)


def f_rps(x):
    return f"{x:,.0f}"


def f_ms(x):
    return f"{x:.3f}"


def ratio(a, b):
    return a / b if b else float("nan")


def ratio_row(num, den, pre=""):
    """Ratios num / den of p50, p90, p99 (num's with prefix pre, e.g. "co_") and of req/s, and
    the percentiles within 10 %: (the ratios as a dict, the table cells after the first two)."""
    rs = [ratio(num[f"{pre}p{p}_ms"], den[f"p{p}_ms"]) for p in ("50", "90", "99")]
    rr = ratio(num["rps"], den["rps"])
    within = [p for p, r in zip(("p50", "p90", "p99"), rs) if 0.9 <= r <= 1.1]
    cells = [f"{rr:.2f}", *(f"{r:.2f}" for r in rs), ", ".join(within) or "none"]
    return dict(zip(("p50", "p90", "p99", "rps"), rs + [rr])), cells


def us_per_req(runs):
    """Median over the runs of the tool's CPU microseconds per completed request."""
    return bl.median([1e6 * r["cpu_s"] / r["requests"] if r["requests"] else float("nan")
                      for r in runs])


def md_table(headers, rows):
    """A markdown table, to paste as it is."""
    out = ["| " + " | ".join(map(str, headers)) + " |", "|" + " --- |" * len(headers)]
    out += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(out)


def measure(a, threads, conns):
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    ngx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "argv": sys.argv,
               "weft": a.weft,
               "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release,
                           "loadavg_start": bl.loadavg()},
               "wrk": wrk_version.strip(), "nginx": ngx_version, "nginx_workers": a.nginx_workers,
               "duration_s": a.duration, "repeat": a.repeat, "lat_duration_s": a.lat_duration,
               "lat_repeat": a.lat_repeat, "busy_poll": a.busy_poll, "top": [], "half": [],
               "think": [], "notes": []}
    t_start = time.monotonic()
    print(f"# weft bench vs wrk: {os.cpu_count()} CPUs, nginx workers {a.nginx_workers}, "
          f"top rate {a.repeat} x {a.duration} s, 50 % load {a.lat_repeat} x {a.lat_duration} s",
          file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="weft-bench-vs-wrk-") as tmp:
        ngx = Nginx(tmp, a.nginx_workers)
        try:
            b = Bench(a.weft, ngx, tmp, a.busy_poll)
            run_wrk(b.url, 1, 10, 1)  # warm-up
            for k, (t, c) in enumerate(zip(threads, conns)):
                runs = top_rate(b, t, c, a.duration, a.repeat, k)
                results["top"].append({"threads": t, "conns": c, "runs": runs,
                                       "median": {tool: summary(rs) for tool, rs in runs.items()}})
            for k, (t, c) in enumerate(zip(threads, conns)):
                top = next(x for x in results["top"] if x["threads"] == t)
                target = top["median"]["wrk"]["rps"] / 2
                h = half_load(b, t, c, target, a.lat_duration, a.lat_repeat, k)
                h.update(threads=t, wrk_top_rps=top["median"]["wrk"]["rps"])
                results["half"].append(h)
            for t, c in zip(threads, conns):
                if not a.think:
                    break
                top = next(x for x in results["top"] if x["threads"] == t)
                results["think"].append(think_load(b, t, c, top["median"]["wrk"]["rps"],
                                                   a.lat_duration, a.lat_repeat))
        finally:
            rc = ngx.stop()
    if rc not in (0, None):
        results["notes"].append(f"nginx exited {rc}")
    for x in results["top"]:
        for tool, rs in x["runs"].items():
            for r in rs:
                if r["errors"] or r["rc"] != 0:
                    results["notes"].append(f"{tool} -t {r['threads']} -c {r['conns']}: "
                                            f"errors {r['errors']}, exit {r['rc']}")
    for h in results["half"]:
        for case in h["cases"]:
            for r in case["runs"]:
                if r["errors"] or r["rc"] != 0:
                    results["notes"].append(f"{r['tool']} {r['mode']} -t {r['threads']} "
                                            f"-c {r['conns']}: errors {r['errors']}, "
                                            f"exit {r['rc']}")
    for x in results["think"]:
        for name, rs in x["runs"].items():
            for r in rs:
                if r["errors"] or r["rc"] != 0:
                    results["notes"].append(f"{name} -t {r['threads']} -c {r['conns']} think "
                                            f"{r['think_ms']} ms: errors {r['errors']}, "
                                            f"exit {r['rc']}")
    results["total_s"] = time.monotonic() - t_start
    results["machine"]["loadavg_end"] = bl.loadavg()
    return results


def report(res):
    """Prints the markdown tables from a results object (also one read back from --json)."""
    wrk = res["wrk"].split(" Copyright")[0]
    ngx = res["nginx"].replace("nginx version: ", "")
    print(f"weft bench beside wrk ({wrk}) against one nginx ({ngx}, "
          f"{res['nginx_workers']} worker), {res['machine']['cpus']} CPUs, {res['date']}; "
          f"weft {res.get('weft', '?')}")
    print()
    print(f"**Top rate**: median of {res['repeat']} runs of {res['duration_s']} s, the tools "
          "alternating. CPU in % of one core; *wb* = weft bench.")
    print()
    rows = []
    for x in res["top"]:
        w, f = x["median"]["wrk"], x["median"]["weft bench"]
        x["ratio_rps"] = ratio(f["rps"], w["rps"])
        rows.append([x["threads"], x["conns"], f_rps(w["rps"]), f_rps(f["rps"]),
                     f"**{x['ratio_rps']:.2f}**", f"{w['cpu_pct']:.0f}%", f"{f['cpu_pct']:.0f}%",
                     " / ".join(f"{us_per_req(x['runs'][t]):.1f}" for t in ("wrk", "weft bench")),
                     f"{w['nginx_cpu_pct']:.0f}% / {f['nginx_cpu_pct']:.0f}%",
                     f"{w['other_cpu_pct']:.0f}% / {f['other_cpu_pct']:.0f}%",
                     f"{w['mean_ms']:.2f} / {f['mean_ms']:.2f}",
                     f"{w['cycle_ms']:.2f} / {f['cycle_ms']:.2f}"])
    print(md_table(["threads", "conns", "wrk req/s", "wb req/s", "wb / wrk", "wrk CPU", "wb CPU",
                    "CPU µs/req (wrk / wb)", "nginx CPU (wrk / wb)", "other CPU (wrk / wb)", "mean ms (wrk / wb)",
                    "conns / rate ms (wrk / wb)"], rows))
    print()
    rows = []
    for x in res["top"]:
        if BUSY not in x["median"]:
            continue
        w, f, bp = x["median"]["wrk"], x["median"]["weft bench"], x["median"][BUSY]
        x["ratio_rps_busy_poll"] = ratio(bp["rps"], w["rps"])
        polled = bl.median([r.get("poll_pct", 0.0) for r in x["runs"][BUSY]])
        rows.append([x["threads"], x["conns"], f_rps(w["rps"]), f_rps(bp["rps"]),
                     f"**{x['ratio_rps_busy_poll']:.2f}**",
                     f"{bp['cpu_pct']:.0f}% ({polled:.0f}% polling)",
                     " / ".join(f"{m.get('nginx_us_per_req', float('nan')):.1f}"
                                for m in (w, f, bp)),
                     f"{bp['other_cpu_pct']:.0f}%"])
    if rows:
        print(f"With `--busy-poll {res.get('busy_poll', '?')}` (in the same rotation): the "
              "generator polls instead of sleeping, so nginx's sends do not wake it.")
        print()
        print(md_table(["threads", "conns", "wrk req/s", "wb busy-poll req/s",
                        "wb busy-poll / wrk", "wb busy-poll CPU",
                        "nginx CPU µs/req (wrk / wb / wb busy-poll)", "other CPU"], rows))
        print()
    print("Each run's req/s: " + "; ".join(
        f"{x['threads']} thread(s): " + "; ".join(
            f"{tool} {', '.join(f'{v:,}' for v in m['runs_rps'])}"
            for tool, m in x["median"].items())
        for x in res["top"]) + ".")
    print()
    print(f"**At ~50 % of wrk's top rate**: medians of {res['lat_repeat']} runs of "
          f"{res['lat_duration_s']} s, in turns; latency in ms.")
    print()
    rows = []
    for h in res["half"]:
        for case in h["cases"]:
            m = case["median"]
            if case["open_rps"]:
                how = f"open `--rps {case['open_rps']:,.0f}`, corrected"
            elif case["conns"] == h["c_wrk"]:
                how = "closed, wrk's 50 % count"
            else:
                how = "closed, its own 50 % count"
            rows.append([h["threads"], case["conns"], case["tool"], how, f_rps(m["rps"]),
                         f"{100 * m['rps'] / h['wrk_top_rps']:.0f}%", f_ms(m["p50_ms"]),
                         f_ms(m["p90_ms"]), f_ms(m["p99_ms"]), f"{m['cpu_pct']:.0f}%",
                         f"{m['other_cpu_pct']:.0f}%"])
            if case["open_rps"]:
                rows.append([h["threads"], case["conns"], case["tool"],
                             f"open, uncorrected ({m['dropped']:,.0f} dropped)", "", "",
                             f_ms(m["unc_p50_ms"]), f_ms(m["unc_p90_ms"]), f_ms(m["unc_p99_ms"]),
                             "", ""])
            elif case["tool"] != "wrk" and "co_p50_ms" in m:
                rows.append([h["threads"], case["conns"], case["tool"],
                             f"same run, `--co-correct` as wrk ({m['co_added']:,.0f} added)", "",
                             "", f_ms(m["co_p50_ms"]), f_ms(m["co_p90_ms"]),
                             f_ms(m["co_p99_ms"]), "", ""])
    print(md_table(["threads", "conns", "tool", "load", "req/s", "of wrk's top", "p50", "p90",
                    "p99", "CPU", "other CPU"], rows))
    print()
    print("**Ratios weft bench / wrk** (goal for latency: 0.90 to 1.10)")
    print()
    rows = []
    for h in res["half"]:
        wrk = next(c["median"] for c in h["cases"] if c["tool"] == "wrk")
        h["ratios"] = {}
        for case in h["cases"]:
            if case["tool"] == "wrk":
                continue
            m = case["median"]
            if case["open_rps"]:
                pairs = [("open, corrected", ""), ("open, uncorrected", "unc_")]
            elif case["conns"] == h["c_wrk"]:
                pairs = [(f"closed, same c={case['conns']}, measured", "")]
                if "co_p50_ms" in m:
                    pairs.append((f"closed, same c={case['conns']}, co-corrected as wrk", "co_"))
            else:
                pairs = [(f"closed, c={case['conns']} (its own 50 %), measured", "")]
                if "co_p50_ms" in m:
                    pairs.append((f"closed, c={case['conns']} (its own 50 %), co-corrected",
                                  "co_"))
            for name, pre in pairs:
                h["ratios"][name], cells = ratio_row(m, wrk, pre)
                rows.append([h["threads"], name, *cells])
    print(md_table(["threads", "weft bench", "req/s", "p50", "p90", "p99", "within 10 %"], rows))
    print()
    # How far each tool's own runs spread: a ratio of medians is only as good as that.
    spread = []
    for h in res["half"]:
        for case in h["cases"]:
            if case["open_rps"]:
                continue
            for key, name in (("p99_ms", "p99"), ("co_p99_ms", "co-corrected p99")):
                vals = [r[key] for r in case["runs"] if key in r]
                if vals:
                    spread.append(f"{h['threads']} thread(s), {case['tool']} c={case['conns']} "
                                  f"{name}: " + ", ".join(f"{v:.3f}" for v in vals))
    if spread:
        print("Each run's p99 in ms (the run-to-run spread of either tool): " + "; ".join(spread)
              + ".")
        print()
    print("Sweep (best of two 1 s runs, req/s by connection count): " + "; ".join(
        f"{h['threads']} thread(s), target {h['target_rps']:,.0f}: "
        + ", ".join(f"{tool} " + " ".join(f"{c}:{max(v):,.0f}" for c, v in by_c.items())
                    for tool, by_c in h["sweep"].items())
        for h in res["half"]) + ".")
    report_think(res)
    for note in res["notes"]:
        print(f"\nnote: {note}")
    print(f"\n(total {res['total_s']:.0f} s; load average {res['machine']['loadavg_start']:.2f} "
          f"at the start, {res['machine'].get('loadavg_end', float('nan')):.2f} at the end)")


THINK_NAMES = {"wrk": "wrk (first)", "weft bench": "weft bench",
               "weft bench at wrk's rate": "weft bench, think for wrk's rate",
               "wrk again": "wrk (second)"}
THINK_RATIOS = (("weft bench / wrk (first)", "weft bench", "wrk"),
                ("weft bench at wrk's rate / wrk (first)", "weft bench at wrk's rate", "wrk"),
                ("wrk (second) / wrk (first)", "wrk again", "wrk"))


def report_think(res):
    """The equal-load section's tables; nothing for results without it (--no-think, or JSON
    from before the section)."""
    if not res.get("think"):
        return
    print()
    print(f"**At equal offered load, closed loop with think time**: wrk with a script whose "
          f"`delay()` returns D ms and `weft bench closed --think Dms`, the same threads and "
          f"connections; then weft bench with D plus what wrk's cycle had more than its own in "
          f"the same turn (so at wrk's rate); then wrk again. Medians of {res['lat_repeat']} "
          f"turns of {res['lat_duration_s']} s; latency in ms, both tools from the request's "
          "write. *cycle* = conns / rate: the think time plus the rest of a connection's cycle.")
    print()
    rows = []
    for x in res["think"]:
        for name, m in x["median"].items():
            rows.append([x["threads"], x["conns"], f"{m['think_ms']:g}", THINK_NAMES[name],
                         f_rps(m["rps"]), f"{100 * m['rps'] / x['wrk_top_rps']:.0f}%",
                         f"{m['cycle_ms']:.3f}", f_ms(m["p50_ms"]), f_ms(m["p90_ms"]),
                         f_ms(m["p99_ms"]), f"{m['cpu_pct']:.0f}%", f"{m['other_cpu_pct']:.0f}%"])
            if "co_p50_ms" in m:
                rows.append([x["threads"], x["conns"], "", f"same runs, `--co-correct` as wrk "
                             f"({m['co_added']:,.0f} added)", "", "", "", f_ms(m["co_p50_ms"]),
                             f_ms(m["co_p90_ms"]), f_ms(m["co_p99_ms"]), "", ""])
    print(md_table(["threads", "conns", "think ms", "run", "req/s", "of wrk's top", "cycle ms",
                    "p50", "p90", "p99", "CPU", "other CPU"], rows))
    print()
    print("**Ratios** (goal for latency: 0.90 to 1.10); *wrk (second) / wrk (first)* is the A/A "
          "control: how far wrk agrees with itself at the same settings.")
    print()
    rows = []
    for x in res["think"]:
        med = x["median"]
        x["ratios"] = {}
        for name, num, den in THINK_RATIOS:
            x["ratios"][name], cells = ratio_row(med[num], med[den])
            rows.append([x["threads"], name, *cells])
    print(md_table(["threads", "ratio", "req/s", "p50", "p90", "p99", "within 10 %"], rows))
    print()
    print("Each run's p99 in ms: " + "; ".join(
        f"{x['threads']} thread(s), {THINK_NAMES[name]}: "
        + ", ".join(f"{r['p99_ms']:.3f}" for r in rs)
        for x in res["think"] for name, rs in x["runs"].items()) + ".")
    print()
    print("The choice: " + "; ".join(
        f"{x['threads']} thread(s): target {x['target_rps']:,.0f} req/s (half of wrk's top "
        f"{x['wrk_top_rps']:,.0f}), think {x['think_ms']} ms, {x['calibration']['conns']} "
        f"connections gave wrk {x['calibration']['wrk_rps']:,.0f} req/s in 1 s, so "
        f"{x['conns']}; wrk's correction interval E = "
        f"{x['median']['wrk'].get('wrk_interval_ms', float('nan')):.3f} ms (it adds samples "
        "only to answers slower than 2E)"
        for x in res["think"]) + ".")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weft", default=bl.DEFAULT_WEFT, help="weft binary (default: %(default)s)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--conns", default="50,100",
                    help="connections for the top rate, one per thread count")
    ap.add_argument("--nginx-workers", type=int, default=1)
    ap.add_argument("--busy-poll", type=int, default=50, metavar="US",
                    help="also run weft bench --busy-poll US in the top-rate runs (0: not)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per top-rate run")
    ap.add_argument("--repeat", type=int, default=3, help="top-rate runs per tool")
    ap.add_argument("--lat-duration", type=int, default=3, help="seconds per 50 %% load run")
    ap.add_argument("--lat-repeat", type=int, default=5, help="50 %% load runs per case")
    ap.add_argument("--no-think", dest="think", action="store_false",
                    help="leave out the equal-load section (closed loop with think time)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    ap.add_argument("--report", metavar="FILE",
                    help="measure nothing: print the tables of a JSON file written by --json")
    a = ap.parse_args()
    if a.report:
        with open(a.report) as f:
            report(json.load(f))
        return
    threads = [int(t) for t in a.threads.split(",")]
    conns = [int(c) for c in a.conns.split(",")]
    if len(conns) != len(threads) or any(c < t for c, t in zip(conns, threads)):
        sys.exit("bench_vs_wrk.py: --conns needs one count >= threads per --threads entry")
    a.weft = os.path.abspath(a.weft)
    ensure_tools(a.weft, bl.DEFAULT_WEFT)
    bl.raise_nofile()
    results = measure(a, threads, conns)
    try:
        report(results)  # also adds the ratios to results
    finally:
        if a.json:
            with open(a.json, "w") as f:
                json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
