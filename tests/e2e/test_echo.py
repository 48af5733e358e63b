"""End-to-end tests of the echo service: many concurrent clients, backpressure, EOF."""
import errno
import math
import os
import random
import selectors
import socket
import threading
import time

from conftest import connect, echo_roundtrip, metric, metrics_until, wait_closed

MiB = 1 << 20
SEED = int(os.environ.get("WEFT_E2E_SEED", "20240611"))


def log_uniform_sizes(rng, n, lo=1, hi=MiB):
    sizes = [lo, hi]
    while len(sizes) < n:
        sizes.append(int(round(math.exp(rng.uniform(math.log(lo), math.log(hi))))))
    rng.shuffle(sizes)
    return sizes


def first_mismatch(a, b):
    n = min(len(a), len(b))
    for i in range(0, n, 4096):
        if a[i:i + 4096] != b[i:i + 4096]:
            for j in range(i, min(i + 4096, n)):
                if a[j] != b[j]:
                    return j
    return n


def test_echo_1000_concurrent_clients(weft_factory):
    """1,000 concurrent clients, each sends one payload of 1 B to 1 MiB (log-uniform) while
    reading, and must get exactly its bytes back, in order."""
    w = weft_factory("--workers", "2")
    addr = w.addr("echo")
    rng = random.Random(SEED)
    n = 1000
    sizes = log_uniform_sizes(rng, n)
    total = sum(sizes)
    assert total <= 110 * MiB, f"test data too big: {total}"
    payloads = [rng.randbytes(sz) for sz in sizes]

    sel = selectors.DefaultSelector()
    state = {}
    failures = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(addr)
        assert err in (0, errno.EINPROGRESS), f"client {i}: connect: {os.strerror(err)}"
        state[s.fileno()] = {"i": i, "sock": s, "sent": 0, "got": bytearray(),
                             "view": memoryview(payloads[i])}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, state[s.fileno()])

    done = 0
    deadline = time.monotonic() + 60
    try:
        while done < n:
            left = deadline - time.monotonic()
            if left <= 0:
                pending = [st for st in state.values() if st.get("open", True)]
                detail = ", ".join(f"#{st['i']}: sent {st['sent']}/{sizes[st['i']]} got "
                                   f"{len(st['got'])}" for st in pending[:10])
                raise AssertionError(f"timed out after 60 s with {n - done} clients "
                                     f"unfinished: {detail}")
            for key, ev in sel.select(min(left, 1.0)):
                st = key.data
                s = st["sock"]
                i = st["i"]
                finished = False
                if ev & selectors.EVENT_WRITE and st["sent"] < sizes[i]:
                    try:
                        st["sent"] += s.send(st["view"][st["sent"]:st["sent"] + 262144])
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError as e:
                        failures.append(f"client {i} ({sizes[i]} B): send failed: {e}")
                        finished = True
                    if not finished and st["sent"] == sizes[i]:
                        sel.modify(s, selectors.EVENT_READ, st)
                if not finished and ev & selectors.EVENT_READ:
                    try:
                        chunk = s.recv(262144)
                    except (BlockingIOError, InterruptedError):
                        chunk = None
                    except OSError as e:
                        failures.append(f"client {i} ({sizes[i]} B): recv failed after "
                                        f"{len(st['got'])} B: {e}")
                        finished = True
                        chunk = None
                    if chunk == b"":
                        failures.append(f"client {i} ({sizes[i]} B): EOF after "
                                        f"{len(st['got'])} B")
                        finished = True
                    elif chunk:
                        st["got"] += chunk
                        if len(st["got"]) > sizes[i]:
                            failures.append(f"client {i}: got {len(st['got'])} B, more than "
                                            f"the {sizes[i]} B it sent")
                            finished = True
                        elif len(st["got"]) == sizes[i]:
                            if st["got"] != payloads[i]:
                                at = first_mismatch(st["got"], payloads[i])
                                failures.append(f"client {i} ({sizes[i]} B): bytes differ at "
                                                f"offset {at}")
                            finished = True
                if finished:
                    sel.unregister(s)
                    s.close()
                    st["open"] = False
                    st["got"] = b""
                    done += 1
    finally:
        for st in state.values():
            if st.get("open", True):
                st["sock"].close()
        sel.close()

    assert not failures, f"{len(failures)} of {n} clients failed: " + "; ".join(failures[:20])

    m = metrics_until(w, lambda m: metric(m, "weft_bytes_sent_total", service="echo") == total)
    assert metric(m, "weft_connections_total", service="echo") == n
    assert metric(m, "weft_bytes_received_total", service="echo") == total
    assert metric(m, "weft_bytes_sent_total", service="echo") == total


def _roundtrips(addr, rng_seed, rounds, size, results, idx, timeout=10.0):
    """One client: `rounds` round trips of `size` bytes on one connection."""
    rng = random.Random(rng_seed)
    try:
        s = connect(addr, timeout=timeout)
        try:
            moved = 0
            for r in range(rounds):
                payload = rng.randbytes(size)
                t0 = time.monotonic()
                got = echo_roundtrip(addr, payload, timeout=timeout, sock=s)
                dt = time.monotonic() - t0
                if got != payload:
                    results[idx] = (f"client {idx} round {r}: sent {size} B, got "
                                    f"{len(got)} B back" +
                                    (" (different bytes)" if len(got) == size else ""))
                    return
                moved += size
            results[idx] = ("ok", moved, dt)
        finally:
            s.close()
    except OSError as e:
        results[idx] = f"client {idx}: {e!r}"


def run_clients(addr, n, rounds, size, seed, timeout=10.0):
    results = [None] * n
    threads = [threading.Thread(target=_roundtrips,
                                args=(addr, seed + i, rounds, size, results, i, timeout),
                                daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    bad = [r if r is not None else f"client {i}: no result (hung)"
           for i, r in enumerate(results) if not (isinstance(r, tuple) and r[0] == "ok")]
    moved = sum(r[1] for r in results if isinstance(r, tuple))
    return bad, moved


def test_echo_backpressure_bounded_memory(weft_factory):
    """A client that writes up to 256 MiB and never reads: weft stops reading from it instead of
    buffering; its RSS grows < 16 MiB, and 20 other clients are served meanwhile."""
    w = weft_factory("--workers", "2")
    addr = w.addr("echo")

    # Warm up both workers' buffers so that the baseline is fair.
    bad, others = run_clients(addr, 20, 3, 65536, seed=1000)
    assert not bad, f"warm-up clients failed: {bad}"
    time.sleep(0.3)
    rss_before = w.rss()

    limit = 256 * MiB
    chunk = random.Random(SEED).randbytes(MiB)
    view = memoryview(chunk)
    writer = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    writer.connect(addr)
    writer.setblocking(False)
    written = 0
    during_results = {}

    def during():
        during_results["r"] = run_clients(addr, 20, 5, 32768, seed=2000, timeout=15.0)

    during_thread = threading.Thread(target=during, daemon=True)
    sel = selectors.DefaultSelector()
    sel.register(writer, selectors.EVENT_WRITE)
    try:
        last_progress = time.monotonic()
        hard_deadline = last_progress + 40
        started_others = False
        while written < limit:
            now = time.monotonic()
            if now - last_progress > 2.0 or now > hard_deadline:
                break
            if not started_others and written >= 4 * MiB:
                during_thread.start()
                started_others = True
            if sel.select(0.2):
                try:
                    off = written % MiB
                    n = writer.send(view[off:])
                except BlockingIOError:
                    n = 0
                if n > 0:
                    written += n
                    last_progress = time.monotonic()
        if not started_others:
            during_thread.start()
        during_thread.join(30)
        assert "r" in during_results, "the 20 clients run while the writer wrote did not finish"
        bad, moved = during_results["r"]
        assert not bad, f"clients served while the writer wrote failed: {bad}"
        others += moved

        # The writer is now stuck on backpressure: weft must still serve other clients.
        t0 = time.monotonic()
        bad, moved = run_clients(addr, 20, 3, 65536, seed=3000)
        elapsed = time.monotonic() - t0
        assert not bad, f"clients served while the writer is blocked failed: {bad}"
        assert elapsed < 10, f"20 clients took {elapsed:.1f} s while the writer was blocked"
        others += moved

        time.sleep(0.3)
        rss_after = w.rss()
        m = w.metrics()
        assert w.alive(), "weft died under backpressure"
    finally:
        sel.close()
        writer.close()

    growth = rss_after - rss_before
    assert written < limit, (f"weft accepted all {limit} B from a client that never reads: "
                             f"no backpressure")
    assert growth < 16 * MiB, (f"RSS grew by {growth / MiB:.1f} MiB ({rss_before} -> "
                               f"{rss_after}) while a client wrote {written} B without reading")

    recv = metric(m, "weft_bytes_received_total", service="echo")
    sent = metric(m, "weft_bytes_sent_total", service="echo")
    writer_in = recv - others
    writer_out = sent - others
    assert 0 <= writer_in <= written, (f"weft counted {writer_in} B received from the writer, "
                                       f"which wrote {written} B")
    assert writer_in < 64 * MiB, f"weft read {writer_in} B from a client that never reads"
    assert 0 <= writer_out <= writer_in
    assert writer_in - writer_out < 16 * MiB, (
        f"weft holds {writer_in - writer_out} B read but not yet sent for one client")


def send_shutdown_read_all(addr, payload, timeout):
    """Sends payload while reading, shuts down the write side after the last byte, and reads
    until EOF. Returns (bytes received, saw_eof)."""
    s = connect(addr, timeout=timeout)
    sel = selectors.DefaultSelector()
    try:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        size = len(payload)
        sent = 0
        got = bytearray()
        eof = False
        view = memoryview(payload)
        if size == 0:
            s.shutdown(socket.SHUT_WR)
            sel.modify(s, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not eof and time.monotonic() < deadline:
            for key, ev in sel.select(0.2):
                if ev & selectors.EVENT_WRITE and sent < size:
                    try:
                        sent += s.send(view[sent:sent + 262144])
                    except BlockingIOError:
                        pass
                    if sent == size:
                        s.shutdown(socket.SHUT_WR)
                        sel.modify(s, selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    try:
                        chunk = s.recv(262144)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        return bytes(got), "reset"
                    if not chunk:
                        eof = True
                    else:
                        got += chunk
        return bytes(got), eof
    finally:
        sel.close()
        s.close()


def test_echo_eof_after_all_bytes(weft):
    """A client sends, then shuts down its write side: it gets all its bytes back, then EOF.
    Each size is tried a few times: a lost EOF may depend on timing."""
    addr = weft.addr("echo")
    rng = random.Random(SEED + 1)
    for size in (0, 1, 1000, 65536, 262144, 300000, MiB, 2 * MiB, 3 * MiB + 17):
        for trial in range(4):
            payload = rng.randbytes(size)
            got, eof = send_shutdown_read_all(addr, payload, timeout=5)
            assert eof is True, (f"{size} B sent then SHUT_WR (trial {trial + 1}): "
                                 f"{'reset' if eof == 'reset' else 'no EOF within 5 s'}; "
                                 f"got {len(got)} of {size} B back"
                                 + (", all of them" if got == payload else ""))
            assert len(got) == size, (f"{size} B sent then SHUT_WR: got {len(got)} B before EOF")
            assert got == payload, f"{size} B: bytes differ at {first_mismatch(got, payload)}"


def test_echo_half_close_keeps_reading_side(weft):
    """After SHUT_WR and EOF, the server's side is closed; a fresh connection still works."""
    addr = weft.addr("echo")
    s = connect(addr)
    try:
        s.sendall(b"hello")
        assert s.recv(5, socket.MSG_WAITALL) == b"hello"
        s.shutdown(socket.SHUT_WR)
        how, rest = wait_closed(s, timeout=5)
        assert how == "eof" and rest == b"", (how, rest)
    finally:
        s.close()
    assert echo_roundtrip(addr, b"again") == b"again"
