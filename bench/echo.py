#!/usr/bin/python3
"""Echo service benchmark: throughput (64 B round trips, 64 KiB payload rate) against iperf3 on
loopback, the server's CPU per message, and resident memory per idle connection.

    bench/echo.py [--weft build-bench/weft] [--workers 1,2] [--duration 5] [--json FILE]

See bench/README.md for what each figure means. Everything runs on 127.0.0.1 with ephemeral ports;
every process started here is stopped by its PID; the whole run takes about 70 s."""

import argparse
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def compile_client(tmp):
    exe = os.path.join(tmp, "echo_client")
    src = os.path.join(HERE, "echo_client.c")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", exe, src], check=True, timeout=60)
    return exe


def run_iperf3(seconds):
    """One iperf3 TCP stream on loopback; returns received bits/s and the CPU figures."""
    port = bl.free_port()
    srv = subprocess.Popen(["iperf3", "-s", "-1", "-p", str(port), "-B", "127.0.0.1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for attempt in range(20):
            time.sleep(0.25)
            cli = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds),
                                  "-J"], capture_output=True, text=True, timeout=seconds + 20)
            try:
                res = json.loads(cli.stdout)
            except json.JSONDecodeError:
                res = {"error": cli.stderr or "no output"}
            if "error" in res and "unable to connect" in str(res["error"]) and attempt < 19:
                continue
            break
        if "error" in res:
            raise RuntimeError(f"iperf3: {res['error']}")
        end = res["end"]
        return {
            "bits_per_second": end["sum_received"]["bits_per_second"],
            "MBps": end["sum_received"]["bits_per_second"] / 8 / 1e6,
            "cpu_client_pct": end["cpu_utilization_percent"]["host_total"],
            "cpu_server_pct": end["cpu_utilization_percent"]["remote_total"],
        }
    finally:
        if srv.poll() is None:
            srv.terminate()
        try:
            srv.wait(5)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait(5)


def run_echo(client, weft, conns, depth, size, warmup, duration):
    """One closed-loop run of the C client against weft's echo service."""
    args = [client, "127.0.0.1", str(weft.ports["echo"]), str(conns), str(depth), str(size),
            str(warmup), str(duration)]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().strip()
        if line != "start":
            p.wait(10)
            raise RuntimeError(f"echo client: {line} {p.stderr.read()}")
        cpu0 = bl.proc_cpu(weft.pid)
        m0 = bl.machine_cpu()
        line = p.stdout.readline().strip()
        cpu1 = bl.proc_cpu(weft.pid)
        m1 = bl.machine_cpu()
        p.wait(max(30, duration + 30))
    except BaseException:
        if p.poll() is None:
            p.kill()
            p.wait()
        raise
    res = dict(kv.split("=") for kv in line.split())
    secs = float(res["secs"])
    msgs = int(res["msgs"])
    nbytes = int(res["bytes"])
    server_cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else float("nan")
    client_cpu = float(res["client_user"]) + float(res["client_sys"])
    # CPU used by everything else on the machine during the window (other users' jobs, softirq
    # work not charged to either process): a busy machine makes every figure lower.
    other_cpu = max(0.0, (m1[0] - m0[0]) - server_cpu - client_cpu)
    return {
        "conns": conns, "depth": depth, "size": size, "secs": secs, "msgs": msgs,
        "msg_per_s": msgs / secs, "MBps_one_way": nbytes / secs / 1e6,
        "server_cpu_s": server_cpu, "server_cpu_pct": 100 * server_cpu / secs,
        "server_us_per_msg": 1e6 * server_cpu / msgs if msgs else float("nan"),
        "client_cpu_pct": 100 * client_cpu / secs,
        "other_cpu_pct": 100 * other_cpu / secs,
        "errors": int(res["errors"]), "mismatches": int(res["mismatches"]),
        "client_rc": p.returncode, "client_stderr": p.stderr.read().strip(),
    }


def wait_active(weft, want, timeout):
    """Polls the admin metrics until weft_connections_active{service="echo"} == want."""
    deadline = time.monotonic() + timeout
    val = None
    while time.monotonic() < deadline:
        val = bl.metric(weft.metrics(), "weft_connections_active", 'service="echo"')
        if val == want:
            return True, val
        time.sleep(0.1)
    return False, val


def open_idle(port, n, batch=500, timeout=30.0):
    """n connected sockets to 127.0.0.1:port, opened with non-blocking connects in batches."""
    socks = []
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + timeout
    while len(socks) < n:
        pending = []
        for _ in range(min(batch, n - len(socks))):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            sel.register(s, selectors.EVENT_WRITE)
            pending.append(s)
        left = len(pending)
        while left:
            if time.monotonic() > deadline:
                raise RuntimeError(f"connect timed out after {len(socks)} connections")
            for key, _ in sel.select(1.0):
                s = key.fileobj
                sel.unregister(s)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise RuntimeError(f"connect failed: {os.strerror(err)} after {len(socks)}")
                socks.append(s)
                left -= 1
    sel.close()
    return socks


def echo_each(socks, size=64, timeout=30.0):
    """Sends size bytes on every socket and reads them back; returns the number that echoed."""
    msg = bytes(range(size))
    sel = selectors.DefaultSelector()
    got = {}
    for s in socks:
        s.send(msg)
        got[s] = b""
        sel.register(s, selectors.EVENT_READ)
    done = 0
    deadline = time.monotonic() + timeout
    while done < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            s = key.fileobj
            data = s.recv(size)
            got[s] += data
            if not data or len(got[s]) >= size:
                sel.unregister(s)
                done += got[s] == msg
    sel.close()
    return done


def rss_test(binary, workers, n, tmp):
    weft = bl.Weft(binary, workers, extra=["--max-connections", str(n + 1000)],
                   services=("echo", "admin"), log_path=os.path.join(tmp, f"rss-w{workers}.log"))
    socks = []
    try:
        time.sleep(0.5)
        before = bl.vm_rss(weft.pid)
        t0 = time.monotonic()
        socks = open_idle(weft.ports["echo"], n)
        ok, val = wait_active(weft, n, 60)
        accept_s = time.monotonic() - t0
        if not ok:
            raise RuntimeError(f"weft shows {val} active echo connections, expected {n}")
        time.sleep(1.0)
        idle = bl.vm_rss(weft.pid)
        echoed = echo_each(socks)
        time.sleep(1.0)
        after_echo = bl.vm_rss(weft.pid)
        for s in socks:
            s.close()
        socks = []
        ok0, val0 = wait_active(weft, 0, 30)
        time.sleep(0.5)
        after_close = bl.vm_rss(weft.pid)
        fds = bl.metric(weft.metrics(), "process_open_fds", "")
    finally:
        for s in socks:
            s.close()
        rc = weft.stop()
    log = open(os.path.join(tmp, f"rss-w{workers}.log")).read()
    return {
        "workers": workers, "conns": n, "rss_before": before, "rss_idle": idle,
        "rss_after_echo": after_echo, "rss_after_close": after_close,
        "bytes_per_idle_conn": (idle - before) / n,
        "bytes_per_conn_after_echo": (after_echo - before) / n,
        "echoed": echoed, "connect_and_accept_s": accept_s, "closed_all_seen": ok0,
        "exit_code": rc, "odd_log": bl.odd_log_lines(log),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weft", default=bl.DEFAULT_WEFT, help="weft binary (default: %(default)s)")
    ap.add_argument("--workers", default="1,2", help="comma-separated --workers values")
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run")
    ap.add_argument("--iperf-seconds", type=int, default=5)
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    a = ap.parse_args()

    workers = [int(w) for w in a.workers.split(",")]
    nofile = bl.raise_nofile()
    for tool in ("gcc", "iperf3"):
        if not shutil.which(tool):
            sys.exit(f"echo.py: {tool} not found (./scripts/deps.sh bench)")
    if not os.access(a.weft, os.X_OK):
        sys.exit(f"echo.py: no weft binary at {a.weft} (build it first, see bench/README.md)")

    # (label, connections, messages in flight per connection, message size)
    cases = [("64 B", 100, 1, 64), ("64 B", 1000, 1, 64),
             ("64 KiB", 1, 4, 65536), ("64 KiB", 10, 2, 65536)]
    results = {"machine": {"cpus": os.cpu_count(), "nofile": nofile,
                           "kernel": os.uname().release},
               "iperf3": [], "echo": [], "rss": [], "notes": []}
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="weft-echo-bench-") as tmp:
        client = compile_client(tmp)
        print(f"# echo benchmark: {os.cpu_count()} CPUs, {a.duration:g} s per run "
              f"(after {a.warmup:g} s warm-up), weft {a.weft}", flush=True)

        results["iperf3"].append(run_iperf3(a.iperf_seconds))
        for w in workers:
            log = os.path.join(tmp, f"echo-w{w}.log")
            weft = bl.Weft(a.weft, w, services=("http", "echo", "admin"), log_path=log)
            try:
                for label, conns, depth, size in cases:
                    r = run_echo(client, weft, conns, depth, size, a.warmup, a.duration)
                    r["workers"] = w
                    r["label"] = label
                    results["echo"].append(r)
                    print(f"  ran workers={w} {label} x{conns} conns: "
                          f"{r['msg_per_s']:.0f} msg/s", file=sys.stderr, flush=True)
            finally:
                rc = weft.stop()
            odd = bl.odd_log_lines(open(log).read())
            if rc != 0 or odd:
                results["notes"].append(f"workers={w}: exit {rc}; log: {odd[:5]}")
        results["iperf3"].append(run_iperf3(a.iperf_seconds))

        if not a.skip_rss:
            for w in workers:
                r = rss_test(a.weft, w, a.idle_conns, tmp)
                results["rss"].append(r)
                if r["exit_code"] != 0 or r["odd_log"]:
                    results["notes"].append(
                        f"rss workers={w}: exit {r['exit_code']}; log: {r['odd_log'][:5]}")

    ip = results["iperf3"]
    ref = sum(x["MBps"] for x in ip) / len(ip)
    results["iperf3_ref_MBps"] = ref

    print()
    print(f"iperf3 loopback, 1 TCP stream, {a.iperf_seconds} s: " +
          ", ".join(f"{x['MBps']:.0f} MB/s (client CPU {x['cpu_client_pct']:.0f} %, "
                    f"server CPU {x['cpu_server_pct']:.0f} %)" for x in ip) +
          f"  -> reference {ref:.0f} MB/s (mean of the runs before and after)")
    print()
    rows = []
    for r in results["echo"]:
        big = r["size"] >= 4096
        r["ratio_vs_iperf3"] = r["MBps_one_way"] / ref if big else None
        rows.append([
            r["workers"], r["label"], r["conns"], r["depth"],
            f"{r['msg_per_s']:,.0f}",
            f"{r['MBps_one_way']:,.1f}",
            f"{r['ratio_vs_iperf3']:.2f}" if big else "-",
            f"{r['server_cpu_pct']:.0f}%",
            f"{r['server_us_per_msg']:.2f}",
            f"{r['client_cpu_pct']:.0f}%",
            f"{r['other_cpu_pct']:.0f}%",
            r["errors"] + r["mismatches"],
        ])
    print("Echo throughput (closed loop; msg/s = round trips per second; MB/s = payload echoed "
          "back per second, one way: each byte also crossed loopback once inbound)")
    print(bl.fmt_table(["workers", "msg", "conns", "in-flight", "msg/s", "MB/s one-way",
                     "vs iperf3", "server CPU", "server us/msg", "client CPU", "other CPU", "errors"], rows))
    print("(CPU % of one core over the measured window; 'other CPU' = the rest of the machine's "
          f"busy time, i.e. other jobs; {os.cpu_count()} cores = {100 * os.cpu_count()} %)")
    if results["rss"]:
        print()
        print("Resident memory per connection (VmRSS of weft; kernel socket buffers not included)")
        rows = []
        for r in results["rss"]:
            rows.append([
                r["workers"], r["conns"], f"{r['rss_before'] / 1024:,.0f}",
                f"{r['rss_idle'] / 1024:,.0f}", f"{r['bytes_per_idle_conn']:.0f}",
                f"{r['bytes_per_conn_after_echo']:.0f}", f"{r['rss_after_close'] / 1024:,.0f}",
                f"{r['connect_and_accept_s']:.1f}",
            ])
        print(bl.fmt_table(["workers", "conns", "RSS before KiB", "RSS idle KiB",
                         "B/idle conn", "B/conn after 1 echo", "RSS after close KiB",
                         "accept s"], rows))
    for n in results["notes"]:
        print(f"note: {n}")
    for r in results["echo"]:
        if r["errors"] or r["mismatches"] or r["client_rc"]:
            print(f"note: workers={r['workers']} {r['label']} x{r['conns']}: errors={r['errors']}"
                  f" mismatches={r['mismatches']} rc={r['client_rc']} {r['client_stderr']}")
    print(f"\n(total {time.monotonic() - t_start:.0f} s)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
