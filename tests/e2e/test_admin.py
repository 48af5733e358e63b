"""End-to-end tests of the admin service: /metrics, /health, /ready, /api/stats."""
import json
import re
import time

from conftest import (RawHTTP, echo_roundtrip, http_get_raw, metric, metrics_until,
                      parse_prometheus)

RUNNING = ("http", "echo", "admin")
HTTP_SERVICES = ("http", "admin")
PER_SERVICE = ("weft_connections_active", "weft_connections_total", "weft_bytes_received_total",
               "weft_bytes_sent_total")
PROCESS = ("process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total")
TYPES = {
    "weft_connections_active": "gauge",
    "weft_connections_total": "counter",
    "weft_connections_rejected_total": "counter",
    "weft_bytes_received_total": "counter",
    "weft_bytes_sent_total": "counter",
    "weft_http_requests_total": "counter",
    "weft_http_request_duration_seconds": "histogram",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_cpu_seconds_total": "counter",
}


def get_metrics_text(weft):
    status, headers, body = http_get_raw(weft.addr("admin"), "/metrics")
    assert status == 200, (status, body[:200])
    ctype = headers.get("content-type", "")
    assert ctype.startswith("text/plain"), f"/metrics Content-Type {ctype!r}"
    return body.decode("utf-8")


def test_metrics_prometheus_format_and_names(weft):
    # One request on each HTTP service so that request counters have samples.
    s, _, _ = http_get_raw(weft.addr("http"), "/")
    assert s == 200
    s, _, _ = http_get_raw(weft.addr("admin"), "/health")
    assert s == 200
    assert echo_roundtrip(weft.addr("echo"), b"ping") == b"ping"

    # Let the counters settle (they are added just after the system calls).
    metrics_until(weft, lambda m: metric(m, "weft_bytes_sent_total", service="echo") == 4 and
                  metric(m, "weft_http_requests_total", service="http", code="200") == 1)
    text = get_metrics_text(weft)
    assert text.endswith("\n"), "the exposition must end with a newline"
    m = parse_prometheus(text)   # raises on any malformed sample line

    # TYPE lines: one per family, with the right type, before its samples.
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            assert len(parts) == 4, f"bad TYPE line {line!r}"
            assert parts[2] not in types, f"two TYPE lines for {parts[2]}"
            types[parts[2]] = parts[3]
        elif line.startswith("#"):
            assert line.startswith("# HELP "), f"unexpected comment {line!r}"
    for name, typ in TYPES.items():
        assert types.get(name) == typ, f"# TYPE {name} is {types.get(name)!r}, want {typ!r}"
    seen_families = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            seen_families.add(line.split()[2])
        elif line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
            assert family in seen_families, f"sample {name} before its # TYPE line"

    for svc in RUNNING:
        for name in PER_SERVICE:
            v = metric(m, name, service=svc)
            assert v is not None, f"no {name}{{service=\"{svc}\"}}"
            assert v >= 0
        v = metric(m, "weft_connections_rejected_total", service=svc, reason="max_connections")
        assert v == 0, f"weft_connections_rejected_total{{service={svc},max_connections}} = {v}"
    for svc in ("chat", "balancer"):
        assert metric(m, "weft_connections_total", service=svc) is None, \
            f"metrics for {svc}, which is off"

    assert metric(m, "weft_http_requests_total", service="http", code="200") == 1
    assert metric(m, "weft_http_requests_total", service="admin", code="200") >= 1
    assert metric(m, "weft_connections_total", service="echo") == 1
    assert metric(m, "weft_bytes_received_total", service="echo") == 4
    assert metric(m, "weft_bytes_sent_total", service="echo") == 4
    assert metric(m, "weft_connections_active", service="admin") >= 1  # this scrape

    for svc in HTTP_SERVICES:
        name = "weft_http_request_duration_seconds"
        buckets = sorted(((float(dict(labels)["le"]), v) for (n, labels), v in m.items()
                          if n == name + "_bucket" and dict(labels).get("service") == svc),
                         key=lambda t: t[0])
        assert buckets, f"no {name}_bucket for {svc}"
        assert buckets[-1][0] == float("inf"), f"{svc}: no le=\"+Inf\" bucket"
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"{svc}: buckets not cumulative: {buckets}"
        count = metric(m, name + "_count", service=svc)
        total = metric(m, name + "_sum", service=svc)
        assert count is not None and total is not None, f"{svc}: no _count or _sum"
        assert buckets[-1][1] == count, f"{svc}: +Inf bucket {buckets[-1][1]} != count {count}"
        assert count >= 1 and total >= 0
        assert total < 10 * count, f"{svc}: implausible duration sum {total} for {count}"

    for name in PROCESS:
        v = metric(m, name)
        assert v is not None, f"no {name}"
    assert metric(m, "process_resident_memory_bytes") > 1 << 20
    assert metric(m, "process_open_fds") >= 5
    assert metric(m, "process_cpu_seconds_total") > 0


def test_counters_move(weft):
    before = weft.metrics()
    with RawHTTP(weft.addr("http")) as c:
        for _ in range(10):
            r = c.request("GET", "/")
            assert r.status == 200
    payload = bytes(range(256)) * 400  # 102400 B
    assert echo_roundtrip(weft.addr("echo"), payload) == payload
    want_sent = metric(before, "weft_bytes_sent_total", 0, service="echo") + len(payload)
    want_reqs = metric(before, "weft_http_requests_total", 0, service="http", code="200") + 10
    after = metrics_until(
        weft, lambda m: metric(m, "weft_bytes_sent_total", service="echo") == want_sent and
        metric(m, "weft_http_requests_total", service="http", code="200") == want_reqs)

    def delta(name, **labels):
        return metric(after, name, 0, **labels) - metric(before, name, 0, **labels)

    assert delta("weft_http_requests_total", service="http", code="200") == 10
    assert delta("weft_http_request_duration_seconds_count", service="http") == 10
    assert delta("weft_connections_total", service="http") == 1
    assert delta("weft_bytes_received_total", service="http") > 10 * len("GET / HTTP/1.1\r\n")
    assert delta("weft_bytes_sent_total", service="http") > 10 * len("Hello, World!")
    assert delta("weft_connections_total", service="echo") == 1
    assert delta("weft_bytes_received_total", service="echo") == len(payload)
    assert delta("weft_bytes_sent_total", service="echo") == len(payload)
    # The first scrape itself was an admin request answered 200.
    assert delta("weft_http_requests_total", service="admin", code="200") >= 1
    assert delta("process_cpu_seconds_total") >= 0


def test_404_counted_by_code(weft):
    before = weft.metrics()
    for _ in range(3):
        s, _, _ = http_get_raw(weft.addr("http"), "/no/such/path")
        assert s == 404
    want = metric(before, "weft_http_requests_total", 0, service="http", code="404") + 3
    after = metrics_until(weft, lambda m: metric(m, "weft_http_requests_total", service="http",
                                                 code="404") == want)
    d = metric(after, "weft_http_requests_total", 0, service="http", code="404") - \
        metric(before, "weft_http_requests_total", 0, service="http", code="404")
    assert d == 3


def test_active_connections_gauge(weft):
    socks = [RawHTTP(weft.addr("http")) for _ in range(7)]
    try:
        for c in socks:
            assert c.request("GET", "/").status == 200
        m = weft.metrics()
        assert metric(m, "weft_connections_active", service="http") == 7
    finally:
        for c in socks:
            c.close()
    # The server notices the closes soon.
    deadline = time.monotonic() + 3
    while True:
        v = metric(weft.metrics(), "weft_connections_active", service="http")
        if v == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert v == 0, f"weft_connections_active{{service=\"http\"}} still {v} after closing all"


def test_health_ready(weft):
    s, h, b = http_get_raw(weft.addr("admin"), "/health")
    assert s == 200
    assert h.get("content-type", "").startswith("application/json")
    assert json.loads(b) == {"status": "ok"}
    s, h, b = http_get_raw(weft.addr("admin"), "/ready")
    assert s == 200
    s, h, b = http_get_raw(weft.addr("admin"), "/health", method="HEAD")
    assert s == 200 and b == b""


def test_api_stats_json(weft):
    assert echo_roundtrip(weft.addr("echo"), b"x" * 1000) == b"x" * 1000
    s, _, _ = http_get_raw(weft.addr("http"), "/")
    assert s == 200
    m = metrics_until(weft, lambda m: metric(m, "weft_bytes_sent_total", service="echo") == 1000
                      and metric(m, "weft_http_requests_total", service="http", code="200") == 1)
    s, h, b = http_get_raw(weft.addr("admin"), "/api/stats")
    assert s == 200
    assert h.get("content-type", "").startswith("application/json")
    stats = json.loads(b)
    assert isinstance(stats, dict)
    services = stats.get("services")
    assert isinstance(services, dict), f"no services object in {stats}"
    for svc in RUNNING:
        assert svc in services, f"/api/stats has no {svc}: {sorted(services)}"
    for svc in ("chat", "balancer"):
        assert svc not in services, f"/api/stats lists {svc}, which is off"
    # The same figures as /metrics.
    echo = services["echo"]
    assert echo.get("bytes_received") == metric(m, "weft_bytes_received_total", service="echo")
    assert echo.get("bytes_sent") == 1000
    assert echo.get("connections_total") == 1
    assert services["http"].get("connections_total") == 1
    assert services["http"].get("requests") == 1


def test_admin_404_and_405(weft):
    s, h, b = http_get_raw(weft.addr("admin"), "/nope")
    assert s == 404
    assert "error" in json.loads(b)
    for path in ("/metrics", "/health", "/nope"):
        s, h, b = http_get_raw(weft.addr("admin"), path, method="POST", body=b"x")
        assert s == 405, f"POST {path}: {s}"
        allow = h.get("allow", "")
        assert "GET" in allow, f"POST {path}: Allow {allow!r}"
