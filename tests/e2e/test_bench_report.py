"""End-to-end tests of what `weft bench` writes besides its table: --csv (appended under one
header, a batch timestamp per call, refusing a file with other columns), --json and --html from
real runs against `weft serve`; and the live progress line: none when stderr is a pipe, one on a
terminal (a pseudo-terminal here)."""
import csv
import errno
import json
import os
import pty
import re
import select
import subprocess
import time

from conftest import SANITIZER_MARKERS, WEFT_BIN, bench
from conftest import http_url as url




def read_csv(path):
    text = path.read_text()
    assert text.endswith("\n")
    assert text.count("batch_ts") == 1, text  # one header, however many calls appended
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_json_html_from_two_calls(weft, tmp_path):
    c, h, j = tmp_path / "runs.csv", tmp_path / "report.html", tmp_path / "run.json"
    target = url(weft)
    started = time.time()
    for conns in (4, 2):
        p = bench("closed", "-c", conns, "-n", 500, "--csv", c, "--html", h, "--json", j, target)
        assert p.returncode == 0, p.stderr
        assert "\r" not in p.stderr and "\x1b[" not in p.stderr, repr(p.stderr)
    p = bench("open", "--rps", 200, "-d", "0.5", "--csv", c, target)
    assert p.returncode == 0, p.stderr

    rows = read_csv(c)
    assert len(rows) == 3
    for row, conns in zip(rows[:2], (4, 2)):
        assert row["call"] == "closed" and row["mode"] == "closed" and row["label"] == "closed"
        assert row["url"] == target and row["protocol"] == "http"
        assert row["requests"] == "500" and row["errors_total"] == "0"
        assert row["connections"] == str(conns)
        assert row["target_rps"] == "" and row["uncorrected_p99_ms"] == ""
        assert 0 < float(row["p50_ms"]) <= float(row["p99_ms"]) <= float(row["max_ms"])
        ts = int(row["batch_ts"])
        assert started - 1 <= ts <= time.time() + 1
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["batch_time"])
    opened = rows[2]
    assert opened["call"] == "open" and opened["mode"] == "open"
    assert float(opened["target_rps"]) == 200
    assert int(opened["requests"]) + int(opened["dropped"]) + int(opened["errors_total"]) == 100
    assert float(opened["uncorrected_p50_ms"]) > 0

    # --json and --html are rewritten by each call: the second one's.
    run = json.loads(j.read_text())
    assert run["requests"] == 500 and run["connections"] == 2 and run["url"] == target

    html = h.read_text()
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert html.count("<svg") == 3  # the percentile curve, latency and throughput over time
    assert "<script" not in html and "src=" not in html and "href=" not in html
    assert "https://" not in html
    assert all(html.startswith(target, m.start()) for m in re.finditer("http://", html))
    assert "Latency by percentile" in html and "Throughput over time: closed" in html
    assert "<th>requests</th><td>500</td>" in html
    assert ">99%</text>" in html  # the nines axis


def test_csv_with_other_columns_is_left_alone(weft, tmp_path):
    c = tmp_path / "other.csv"
    c.write_text("when,what\n1,x\n")
    p = bench("closed", "-c", 1, "-n", 20, "--csv", c, url(weft))
    assert p.returncode == 1
    assert "not this version's CSV header" in p.stderr, p.stderr
    assert c.read_text() == "when,what\n1,x\n"


def test_no_progress_line_when_piped(weft):
    p = bench("closed", "-c", 2, "-d", "1.5", url(weft))
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", repr(p.stderr)
    assert "\r" not in p.stdout and "\x1b" not in p.stdout


def test_progress_line_on_a_terminal(weft):
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([WEFT_BIN, "bench", "closed", "-c", "2", "-d", "2.5", url(weft)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    finally:
        os.close(slave)
    out = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError as e:  # EIO: every writer of the terminal is gone
                if e.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            out += chunk
        stdout = proc.communicate(timeout=30)[0].decode()
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = out.decode("utf-8", "replace")
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err
    assert proc.returncode == 0, err
    lines = re.findall(r"\r(\d+\.\d) s / 2\.5 s  requests (\d+)  req/s ([\d.]+)  errors 0\x1b\[K",
                       err)
    assert len(lines) >= 1, repr(err)
    assert all(float(s) >= 0.9 and int(n) > 0 and float(r) > 0 for s, n, r in lines), lines
    counts = [int(n) for _, n, _ in lines]
    assert counts == sorted(counts)
    assert err.endswith("\r\x1b[K"), repr(err)  # cleared before the table is printed
    assert "\n" not in err
    assert re.search(r"^requests\s+\d+$", stdout, re.M), stdout
