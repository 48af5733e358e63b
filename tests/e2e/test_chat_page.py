"""End-to-end test of the web chat page (GET / on the chat port) in a real browser.

chat_page/two_browsers.js drives Debian's Chromium through playwright-core: two browser contexts
join one room with different names, both show 2 members, a message typed in one shows in the
other's #messages (as text, with sender and time), the other answers with the Send button, one
switches rooms, and no request leaves the weft host. It prints one JSON line and always exits
(40 s overall); it also saves a screenshot to /tmp/chat_page.png (WEFT_CHAT_PAGE_SCREENSHOT
chooses another file).

Needs /usr/bin/chromium (WEFT_CHROMIUM chooses another) and tests/e2e/node_modules/playwright-core
(npm ci in tests/e2e). Without them the test fails, since CI must run it; set
WEFT_ALLOW_SKIP_BROWSER=1 to skip it instead.
"""
import json
import os
import shutil
import signal
import subprocess

import pytest

from conftest import http_get_raw

E2E = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(E2E, "chat_page", "two_browsers.js")
CHROMIUM = os.environ.get("WEFT_CHROMIUM", "/usr/bin/chromium")
PLAYWRIGHT = os.path.join(E2E, "node_modules", "playwright-core")
SCREENSHOT = os.environ.get("WEFT_CHAT_PAGE_SCREENSHOT", "/tmp/chat_page.png")
SCRIPT_TIMEOUT = 40   # the script's own overall limit
GRACE = 20            # on top of it, before the test kills the script


def _require_browser():
    missing = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not os.path.isfile(os.path.join(PLAYWRIGHT, "package.json")):
        missing.append(f"{PLAYWRIGHT} (cd tests/e2e && npm ci)")
    if shutil.which("node") is None:
        missing.append("node on PATH")
    if not missing:
        return
    reason = "browser test needs " + ", ".join(missing)
    if os.environ.get("WEFT_ALLOW_SKIP_BROWSER") == "1":
        pytest.skip(reason + " (skipped: WEFT_ALLOW_SKIP_BROWSER=1)")
    pytest.fail(reason + "; set WEFT_ALLOW_SKIP_BROWSER=1 to skip instead", pytrace=False)


def _run_script(base):
    proc = subprocess.Popen(["node", SCRIPT, base, "--screenshot", SCREENSHOT,
                             "--chromium", CHROMIUM],
                            cwd=E2E, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=SCRIPT_TIMEOUT + GRACE)
    except subprocess.TimeoutExpired:
        # Only the script's own process group (node and the Chromium it started).
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"two_browsers.js did not exit within {SCRIPT_TIMEOUT + GRACE} s; "
                             f"stdout: {out[-3000:]!r}; stderr: {err[-3000:]!r}")
    text = out.decode("utf-8", "replace")
    result = None
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
                break
            except ValueError:
                continue
    return proc.returncode, result, text, err.decode("utf-8", "replace")


def _explain(rc, result, out, err):
    lines = [f"two_browsers.js exit {rc}"]
    if result is None:
        lines.append(f"no JSON result; stdout:\n{out[-3000:]}")
    else:
        if result.get("error"):
            lines.append(f"error: {result['error']}")
        for s in result.get("steps", []):
            mark = "ok  " if s.get("ok") else "FAIL"
            detail = s.get("detail")
            lines.append(f"  {mark} {s.get('step')} ({s.get('ms')} ms)"
                         + (f": {json.dumps(detail)[:500]}" if detail is not None else ""))
        for key in ("outside", "page_errors", "console"):
            if result.get(key):
                lines.append(f"{key}: {result[key]}")
        lines.append(f"requests: {result.get('requests')}")
    if err.strip():
        lines.append(f"stderr:\n{err[-3000:]}")
    return "\n".join(lines)


def test_chat_page_two_browsers(weft_factory):
    """Two browsers on the chat page: members, a message each way, a room switch, and nothing
    loaded from outside the weft host."""
    _require_browser()
    w = weft_factory("--chat", "127.0.0.1:0")
    host, port = w.addr("chat")

    # The page itself, before the browser: HTML, no outside URLs in it.
    status, headers, body = http_get_raw((host, port), "/")
    assert status == 200, (status, body[:200])
    assert headers.get("content-type", "").startswith("text/html"), headers
    page = body.decode("utf-8")
    for needle in ('id="name"', 'id="room"', 'id="connect"', 'id="text"', 'id="send"',
                   'id="messages"', 'id="members"', 'id="status"'):
        assert needle in page, f"{needle} missing from the page"
    for outside in ("http://", "https://", "//cdn", "@import", "url("):
        assert outside not in page, f"the page names an outside resource: {outside!r}"

    rc, result, out, err = _run_script(f"http://{host}:{port}")
    assert rc == 0 and result is not None and result.get("ok") is True, \
        _explain(rc, result, out, err)
    assert result["outside"] == [], _explain(rc, result, out, err)
    assert any("/ws?" in r for r in result["requests"]), _explain(rc, result, out, err)
    assert w.alive(), "weft exited during the browser test"
