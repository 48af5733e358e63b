"""End-to-end tests of `weft bench` against ws:// (chat fan-out) and tcp:// (echo) targets on a real
`weft serve`: exact message, delivery and byte counts checked against weft's own metrics, fan-out
latency, --json, threads, open loop, and targets that are absent or answer the wrong protocol
(errors by kind, never a hang)."""
import json
import re

from conftest import metric, metrics_until
from conftest import bench, free_port
from test_bench import errors, field, think_run_checks


def chat_weft(weft_factory, *flags):
    return weft_factory("--chat", "127.0.0.1:0", *flags)


def ws_url(weft, room):
    host, port = weft.addr("chat")
    return f"ws://{host}:{port}/ws?room={room}"


def tcp_url(weft, service="echo"):
    host, port = weft.addr(service)
    return f"tcp://{host}:{port}"


def chat_received(weft):
    return metric(weft.metrics(), "weft_chat_messages_received_total", 0)


def latency_row(out, name):
    m = re.search(rf"^\s+{name}((?:\s+[\d.]+){{5}})$", out, re.M)
    assert m, f"no {name!r} latency row in:\n{out}"
    return [float(x) for x in m.group(1).split()]


# ---- ws:// ----------------------------------------------------------------------------------

def test_ws_closed_every_delivery_counted(weft_factory, tmp_path):
    w = chat_weft(weft_factory)
    before = chat_received(w)
    out = tmp_path / "ws.json"
    p = bench("closed", "-n", 200, "--subscribers", 20, "--json", out, ws_url(w, "exact"))
    assert p.returncode == 0, p.stderr
    assert "1 sender, 20 subscribers" in p.stdout, p.stdout
    assert field(p.stdout, "messages") == 200
    assert field(p.stdout, "deliveries") == 20 * 200
    assert errors(p.stdout)[0] == 0, p.stdout
    p50, p90, p99, p999, mx = latency_row(p.stdout, "fan-out")
    assert 0 < p50 <= p99 <= mx, p.stdout
    j = json.loads(out.read_text())
    assert j["protocol"] == "ws" and j["subscribers"] == 20
    assert j["deliveries"] == 4000 and j["requests"] == 200 and j["errors_total"] == 0
    assert j["latency_ms"]["p50"] > 0
    # The server saw exactly the messages the generator counts (joins are not messages).
    m = metrics_until(w, lambda m: metric(m, "weft_chat_messages_received_total", 0) >= before +
                      200)
    assert metric(m, "weft_chat_messages_received_total", 0) == before + 200


def test_ws_open_loop(weft_factory):
    w = chat_weft(weft_factory)
    p = bench("open", "--rps", 200, "-d", 2, "--subscribers", 50, ws_url(w, "open"))
    assert p.returncode == 0, p.stderr
    n, dropped = field(p.stdout, "messages"), field(p.stdout, "dropped")
    assert n + dropped + errors(p.stdout)[0] == 400, p.stdout
    assert n >= 390 and errors(p.stdout)[0] == 0, p.stdout
    assert field(p.stdout, "deliveries") == 50 * n, p.stdout
    assert re.search(r"^target rps\s+200\.0$", p.stdout, re.M), p.stdout
    corrected, uncorrected = latency_row(p.stdout, "corrected"), latency_row(p.stdout,
                                                                           "uncorrected")
    assert 0 < corrected[0] and 0 < uncorrected[0] <= corrected[-1], p.stdout
    dur = float(re.search(r"^duration\s+([\d.]+) s$", p.stdout, re.M).group(1))
    assert 1.9 <= dur < 4, p.stdout


def test_ws_threads_split_subscribers(weft_factory):
    w = chat_weft(weft_factory)
    p = bench("closed", "-t", 2, "-n", 100, "--subscribers", 9, ws_url(w, "split"))
    assert p.returncode == 0, p.stderr
    assert "2 threads, 1 sender, 9 subscribers" in p.stdout, p.stdout
    assert field(p.stdout, "deliveries") == 900 and errors(p.stdout)[0] == 0, p.stdout
    # More threads than subscribers: one worker has no connection at all and must still end.
    p = bench("closed", "-t", 4, "-n", 50, "--subscribers", 3, ws_url(w, "split4"))
    assert p.returncode == 0, p.stderr
    assert "4 threads" in p.stdout, p.stdout
    assert field(p.stdout, "deliveries") == 150 and errors(p.stdout)[0] == 0, p.stdout


def test_ws_duration_and_warmup_not_counted(weft_factory):
    w = chat_weft(weft_factory)
    # The warm-up's connections leave the room while the measured run's join: neither their
    # presence nor their messages may reach the measured counts.
    p = bench("closed", "--warmup", "0.3", "-n", 50, "--subscribers", 5, ws_url(w, "warm"))
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "messages") == 50
    assert field(p.stdout, "deliveries") == 250 and errors(p.stdout)[0] == 0, p.stdout
    p = bench("closed", "-d", "300ms", "--subscribers", 4, ws_url(w, "dur"))
    assert p.returncode == 0, p.stderr
    n = field(p.stdout, "messages")
    assert n > 0 and field(p.stdout, "deliveries") == 4 * n, p.stdout
    dur = float(re.search(r"^duration\s+([\d.]+) s$", p.stdout, re.M).group(1))
    assert 0.25 <= dur < 2.0, p.stdout


def test_ws_no_server_connect_errors_strict_exit_1():
    target = f"ws://127.0.0.1:{free_port()}/ws?room=none"
    p = bench("closed", "-n", 5, "--subscribers", 3, target)
    assert p.returncode == 0, p.stderr
    total, kinds = errors(p.stdout)
    assert total == kinds["connect"] == 4, p.stdout
    assert field(p.stdout, "messages") == 0 and field(p.stdout, "deliveries") == 0
    p = bench("closed", "-n", 5, "--subscribers", 3, "--strict", target)
    assert p.returncode == 1, p.stdout


def test_ws_wrong_servers_are_protocol_errors(weft):
    # No 101: the http service answers /ws with 404; the echo service sends the request back.
    for service in ("http", "echo"):
        host, port = weft.addr(service)
        p = bench("closed", "-n", 5, "--subscribers", 3, "--timeout", "3s",
                  f"ws://{host}:{port}/ws", timeout=20)
        assert p.returncode == 0, p.stderr
        total, kinds = errors(p.stdout)
        assert total == kinds["protocol"] == 4, (service, p.stdout)
        assert field(p.stdout, "messages") == 0, p.stdout


def test_ws_message_over_server_limit(weft_factory):
    # The server closes the sender with 1009 (too big): a protocol error, and the run ends.
    w = chat_weft(weft_factory, "--chat-max-message", "1024")
    p = bench("closed", "-n", 5, "--subscribers", 2, "--size", 2000, ws_url(w, "big"), timeout=20)
    assert p.returncode == 0, p.stderr
    total, kinds = errors(p.stdout)
    assert kinds["protocol"] >= 1 and field(p.stdout, "messages") == 0, p.stdout
    assert field(p.stdout, "deliveries") == 0, p.stdout
    # Below the limit every message goes through, padded to --size.
    p = bench("closed", "-n", 20, "--subscribers", 2, "--size", 900, ws_url(w, "fits"))
    assert p.returncode == 0 and errors(p.stdout)[0] == 0, p.stdout
    assert field(p.stdout, "deliveries") == 40, p.stdout


# ---- tcp:// ---------------------------------------------------------------------------------

def echo_bytes(m):
    return (metric(m, "weft_bytes_received_total", 0, service="echo"),
            metric(m, "weft_bytes_sent_total", 0, service="echo"))


def check_echo_bytes(weft, before, want):
    rx0, tx0 = before
    m = metrics_until(weft, lambda m: echo_bytes(m) == (rx0 + want, tx0 + want), timeout=5)
    assert echo_bytes(m) == (rx0 + want, tx0 + want)


def test_tcp_closed_counts_match_server(weft):
    before = echo_bytes(weft.metrics())
    p = bench("closed", "-c", 10, "-n", 1000, tcp_url(weft))
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "requests") == 1000 and errors(p.stdout)[0] == 0, p.stdout
    check_echo_bytes(weft, before, 1000 * 64)


def test_tcp_messages_bigger_than_the_read_buffer(weft):
    before = echo_bytes(weft.metrics())
    p = bench("closed", "-c", 2, "-n", 20, "--size", 100000, tcp_url(weft))
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "requests") == 20 and errors(p.stdout)[0] == 0, p.stdout
    check_echo_bytes(weft, before, 20 * 100000)


def test_tcp_open_loop(weft):
    p = bench("open", "--rps", 500, "-d", 1, "--size", 200, tcp_url(weft))
    assert p.returncode == 0, p.stderr
    n, dropped = field(p.stdout, "requests"), field(p.stdout, "dropped")
    assert n + dropped + errors(p.stdout)[0] == 500, p.stdout
    assert n >= 450 and errors(p.stdout)[0] == 0, p.stdout  # drops only on a stalled host
    assert latency_row(p.stdout, "corrected")[0] > 0


def test_tcp_closed_think_time(weft, tmp_path):
    out = tmp_path / "t.json"
    think_run_checks(bench("closed", "-c", 2, "--think", "20ms", "-d", 1, "--json", out,
                           tcp_url(weft)), out)


def test_tcp_wrong_echo_is_an_error_not_a_hang(weft):
    # The http service takes the bytes for a request head past its 8 KiB limit and answers 431:
    # not the echo.
    p = bench("closed", "-c", 2, "-n", 6, "--size", 10000, "--timeout", "2s",
              tcp_url(weft, "http"), timeout=20)
    assert p.returncode == 0, p.stderr
    total, kinds = errors(p.stdout)
    assert field(p.stdout, "requests") == 0, p.stdout
    assert total == 6 and kinds["protocol"] + kinds["read"] == 6, p.stdout
