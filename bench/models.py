#!/usr/bin/python3
"""The three concurrency models of the http service side by side: `weft serve --model
async|threaded|blocking`, each loaded by wrk (-t1, 100 connections by default) on GET /,
POST /reverse and GET /sleep?ms=10, one after another in one run.

    bench/models.py [--bin build-bench/weft] [--conns 100] [--duration 5] [--json FILE]

Reported per model and endpoint: requests/s, latency p50/p99 (wrk --latency), socket errors
and timeouts (the blocking model serves one connection at a time, so wrk's other connections
wait: that is the point of the comparison), and the server's CPU seconds over the run.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from http_vs_nginx import REVERSE_LUA, run_wrk  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("async", "threaded", "blocking")


def build(binary):
    if os.path.exists(binary):
        return
    build_dir = os.path.dirname(binary)
    subprocess.run(["cmake", "-S", REPO, "-B", build_dir, "-G", "Ninja",
                    "-DCMAKE_BUILD_TYPE=Release"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", build_dir, "weft"], check=True, stdout=subprocess.DEVNULL)


def fmt_ms(s):
    return "-" if s != s else f"{s * 1000:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(REPO, "build-bench", "weft"))
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1, help="event-loop workers for async")
    ap.add_argument("--json")
    args = ap.parse_args()
    build(args.bin)
    bl.raise_nofile()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        lua = os.path.join(tmp, "reverse.lua")
        with open(lua, "w") as f:
            f.write(REVERSE_LUA)
        for model in MODELS:
            w = bl.Weft(args.bin, args.workers, extra=("--model", model),
                        services=("http", "admin"))
            try:
                base = f"http://127.0.0.1:{w.ports['http']}"
                for name, path, script in (("GET /", "/", None),
                                           ("POST /reverse", "/reverse", lua),
                                           ("GET /sleep?ms=10", "/sleep?ms=10", None)):
                    r = run_wrk(base + path, args.conns, args.duration, lambda: [w.pid],
                                script=script)
                    r.update(model=model, case=name)
                    rows.append(r)
            finally:
                w.stop()
    print(f"weft --model comparison: wrk -t1 -c{args.conns} -d{args.duration}s, "
          f"async with --workers {args.workers}")
    print(f"{'model':>9} {'case':>17} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>7} {'CPU s':>6}")
    for r in rows:
        errs = sum(r.get("socket_errors", {}).values()) + r.get("non2xx", 0)
        print(f"{r['model']:>9} {r['case']:>17} {r['rps']:>9,.0f} {fmt_ms(r.get('p50_s')):>8} "
              f"{fmt_ms(r.get('p99_s')):>8} "
              f"{errs:>7} {r.get('server_cpu_s', float('nan')):>6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
