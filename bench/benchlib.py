"""Helpers shared by the bench scripts: starting weft, free ports, /proc CPU and memory readings.

Standard library only. Every process started here is stopped by its PID."""

import os
import re
import select
import signal
import socket
import subprocess
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_WEFT = os.path.join(REPO, "build-bench", "weft")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def raise_nofile():
    """Raise this process's soft RLIMIT_NOFILE to the hard limit (children inherit it)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def free_port():
    """A port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_split(pid):
    """(utime, stime) of a process (all its threads), in seconds; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def proc_cpu(pid):
    """utime + stime of a process (all its threads), in seconds; None if it is gone."""
    c = proc_cpu_split(pid)
    return None if c is None else c[0] + c[1]


def children(pid):
    """PIDs whose parent is pid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(name))
    return out


def tree_cpu(pids):
    """Summed utime + stime over the given PIDs (processes that have gone count as 0)."""
    return sum(c for c in (proc_cpu(p) for p in pids) if c is not None)


def tree_stime(pids):
    """Summed stime (time in the kernel) over the given PIDs."""
    return sum(c[1] for c in (proc_cpu_split(p) for p in pids) if c is not None)


def _stat_cpu(name):
    """(busy, total) seconds of /proc/stat's line `name` ("cpu": the whole machine, "cpuN": one
    CPU); busy is every field but idle and iowait."""
    with open("/proc/stat") as f:
        for line in f:
            if line.split(maxsplit=1)[0] == name:
                vals = [int(x) for x in line.split()[1:9]]
                return (sum(vals) - vals[3] - vals[4]) / CLK_TCK, sum(vals) / CLK_TCK
    raise ValueError(f"no {name} in /proc/stat")


def cpu_busy(cpu):
    """Busy seconds of one CPU so far: the work of every process that ran there and the
    interrupt work the kernel charges to none."""
    return _stat_cpu(f"cpu{cpu}")[0]


def machine_cpu():
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    return _stat_cpu("cpu")


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def vm_rss(pid):
    """VmRSS of a process in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def http_get(host, port, path, timeout=5):
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


def metric(text, name, labels):
    """The value of one sample in Prometheus text, e.g. metric(t, "weft_connections_active",
    'service="echo"'); None if absent."""
    m = re.search(r"^" + re.escape(name) + r"\{" + re.escape(labels) + r"\} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


class Weft:
    """A `weft serve` process on ephemeral ports. Stop it with stop()."""

    def __init__(self, binary, workers, extra=(), services=("http", "echo", "admin"),
                 wrapper=(), ready_timeout=15.0, log_path=None):
        args = list(wrapper) + [binary, "serve"]
        for svc in ("http", "echo", "chat", "balancer", "admin"):
            args += [f"--{svc}", "127.0.0.1:0" if svc in services else "off"]
        args += ["--workers", str(workers)] + list(extra)
        self.args = args
        self.log_path = log_path
        self.errf = open(log_path, "w+") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.errf,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.ports = {}
        deadline = time.monotonic() + ready_timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while not all(s in self.ports for s in services):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"weft did not start: {' '.join(args)}\n{self.log_tail()}")
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    continue
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    parts = line.decode().split()
                    if len(parts) == 3 and parts[0] == "listening":
                        host, port = parts[2].rsplit(":", 1)
                        self.ports[parts[1]] = int(port)

    def metrics(self):
        return http_get("127.0.0.1", self.ports["admin"], "/metrics")

    def log_tail(self, n=20):
        if not self.log_path:
            return ""
        with open(self.log_path) as f:
            return "".join(f.readlines()[-n:])

    def stop(self, timeout=20.0):
        """SIGTERM, wait, SIGKILL if needed. Returns the exit status (negative: killed by signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self.killed = True
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.log_path and not isinstance(self.errf, int):
            self.errf.close()
        return self.proc.returncode


def odd_log_lines(text):
    """Log lines above info level (warnings, errors) from a weft stderr log."""
    return [l for l in text.splitlines() if re.search(r"\b(warn|error|fatal|crit)\b", l)]


def fmt_table(headers, rows):
    """Right-aligned columns under a header and a rule, for the scripts' reports."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    out = ["  ".join(str(h).rjust(w) for h, w in zip(headers, widths)),
           "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))
    return "\n".join(out)


def run_rusage(args, timeout):
    """Runs args to its end, stdout and stderr into temporary files, and takes the child's own
    CPU time from wait4 on its PID (exact, and no other child counts). Returns a dict: rc (None
    when it had to be killed past timeout), out, err, wall_s, cpu_s (utime + stime)."""
    import tempfile
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.monotonic()
        p = subprocess.Popen(args, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
        killed = False
        while True:
            # WNOHANG: until wait4 reaps it, the PID cannot belong to anyone else
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if not killed and time.monotonic() > t0 + timeout:
                os.kill(p.pid, signal.SIGKILL)
                killed = True
            time.sleep(0.005)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        return {"rc": None if killed else p.returncode, "out": fo.read().decode(errors="replace"),
                "err": fe.read().decode(errors="replace"), "wall_s": wall,
                "cpu_s": ru.ru_utime + ru.ru_stime}


def median(xs):
    """The median of a non-empty list (the mean of the middle two for an even count)."""
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
