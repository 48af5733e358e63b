"""A join storm over two workers: a member hears only of joins that came after its own. (A join
on one worker reaches the other through its inbox; a member that joined there in between must
not get it: that would be news from before its own join, with a smaller member count.)"""
import json
import os
import subprocess

E2E = os.path.dirname(os.path.abspath(__file__))


def test_no_presence_from_before_own_join(weft_factory):
    w = weft_factory("--chat", "127.0.0.1:0", "--workers", "2")
    host, port = w.addr("chat")
    n = 150
    p = subprocess.run(["node", "presence_order.js", f"ws://{host}:{port}", str(n)], cwd=E2E,
                       capture_output=True, text=True, timeout=40)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert p.returncode == 0, res
    out = res["out"]
    assert sorted(r["joined"] for r in out) == list(range(1, n + 1))
    for r in out:
        # Every join a member hears of came after its own, so it saw a larger room.
        assert all(m > r["joined"] for m in r["presence"]), r
        # And it hears of every later join, exactly once.
        assert sorted(r["presence"]) == list(range(r["joined"] + 1, n + 1)), r
