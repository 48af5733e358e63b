"""Self-tests of the harness in conftest.py, against a fake weft, so that a sanitizer report or
a bad exit status really fails a test."""
import os
import stat
import sys
import textwrap

import pytest

from conftest import Weft, WeftError, metric, parse_prometheus

FAKE = textwrap.dedent("""\
    #!{python}
    import os, signal, socket, sys, time
    mode = os.environ.get("FAKE_MODE", "ok")
    def term(*a):
        if mode == "asan":
            sys.stderr.write("==1==ERROR: AddressSanitizer: heap-use-after-free\\n")
        if mode == "ubsan":
            sys.stderr.write("src/x.c:1:2: runtime error: signed integer overflow\\n")
        sys.stderr.flush()
        os._exit(3 if mode == "status" else 0)
    signal.signal(signal.SIGTERM, term)
    if mode == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    socks = []
    for name in ("http", "echo", "admin"):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); socks.append(s)
        print("listening %s 127.0.0.1:%d" % (name, s.getsockname()[1]), flush=True)
    while True:
        time.sleep(1)
""")


@pytest.fixture
def fake_bin(tmp_path):
    p = tmp_path / "fake-weft"
    p.write_text(FAKE.format(python=sys.executable))
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def start_fake(fake_bin, mode):
    return Weft(bin_path=fake_bin, env=dict(os.environ, FAKE_MODE=mode)).start(timeout=10)


def test_clean_run_passes(fake_bin):
    w = start_fake(fake_bin, "ok")
    assert set(w.addrs) == {"http", "echo", "admin"}
    assert all(port > 0 for _, port in w.addrs.values())
    assert w.stop() == []


@pytest.mark.parametrize("mode,needle", [("asan", "AddressSanitizer"),
                                         ("ubsan", "runtime error"),
                                         ("status", "exited with status 3")])
def test_bad_exit_is_reported(fake_bin, mode, needle):
    w = start_fake(fake_bin, mode)
    problems = "\n".join(w.stop())
    assert needle in problems, problems


def test_hang_is_killed_and_reported(fake_bin):
    w = start_fake(fake_bin, "hang")
    w.stop_timeout = 1
    problems = "\n".join(w.stop())
    assert "did not exit" in problems
    assert not w.alive()


def test_missing_listening_lines_time_out(fake_bin):
    w = Weft("--chat", "127.0.0.1:0", bin_path=fake_bin, env=dict(os.environ, FAKE_MODE="ok"))
    with pytest.raises(WeftError, match="chat"):
        w.start(timeout=1)
    assert not w.alive()


def test_parse_prometheus():
    text = ('# TYPE a counter\na{x="1",y="q\\"uote"} 3\nb 1.5e3\nc{le="+Inf"} +Inf\n'
            'd{} 0\n')
    m = parse_prometheus(text)
    assert metric(m, "a", x="1", y='q"uote') == 3
    assert metric(m, "b") == 1500
    assert metric(m, "c", le="+Inf") == float("inf")
    assert metric(m, "d") == 0
    with pytest.raises(ValueError):
        parse_prometheus("a{x=1} 2\n")
    with pytest.raises(ValueError):
        parse_prometheus("a 1\na 2\n")
