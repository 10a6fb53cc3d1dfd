"""A small driver of headless Chromium over the DevTools protocol, for the browser test.

One browser process serves every page. :meth:`Chromium.inspect` loads a local HTML file at a
1,280 px wide window and reports what a reader would meet: console errors, uncaught
exceptions, failed requests, requests that leave the file's folder, images that did not load,
raw LaTeX in the rendered text and elements wider than the window; it also saves a screenshot.
Only the ``websocket-client`` package is needed besides Chromium (Debian's ``chromium``).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import websocket

#: Flags for a quiet, isolated browser: nothing is fetched from anywhere on its own.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
]

WINDOW = (1280, 800)

# Evaluated in the page once it has loaded: what is wrong with it, as plain data.
_PAGE_CHECKS = """
(() => {
  const text = document.body ? document.body.innerText : "";
  const images = Array.from(document.images).map(img => ({src: img.src.slice(0, 80),
      ok: img.complete && img.naturalWidth > 0}));
  const width = document.documentElement.clientWidth;
  const wide = Array.from(document.querySelectorAll("table, img, pre, math, svg"))
      .map(el => ({tag: el.tagName.toLowerCase(), right: Math.round(el.getBoundingClientRect().right),
                   text: (el.innerText || el.getAttribute("alt") || "").slice(0, 60)}))
      .filter(el => el.right > width + 1);
  return {rawDollars: text.includes("$$"), rawFrac: text.includes("\\\\frac"),
          brokenImages: images.filter(i => !i.ok), images: images.length,
          mathElements: document.querySelectorAll("math").length,
          wide: wide, scrollWidth: document.documentElement.scrollWidth, width: width,
          height: document.documentElement.scrollHeight, title: document.title};
})()
"""


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian's package installs ``/usr/bin/chromium``)."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    """What loading one page showed."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    checks: dict = field(default_factory=dict)
    screenshot: Path | None = None

    def problems(self) -> list[str]:
        """Every reason the page fails the test, in words."""
        found = [f"console error: {m}" for m in self.console_errors]
        found += [f"failed request: {u}" for u in self.failed_requests]
        found += [f"request outside the report's folder: {u}" for u in self.outside_requests]
        checks = self.checks
        if checks.get("rawDollars"):
            found.append("raw $$ in the rendered text (a formula did not render)")
        if checks.get("rawFrac"):
            found.append("raw \\frac in the rendered text (a formula did not render)")
        found += [f"image did not load: {i['src']}" for i in checks.get("brokenImages", [])]
        found += [f"{w['tag']} wider than the {checks.get('width')} px window (right edge {w['right']} px): "
                  f"{w['text']!r}" for w in checks.get("wide", [])]
        if checks.get("scrollWidth", 0) > checks.get("width", 0) + 1:
            found.append(f"page scrolls sideways: {checks['scrollWidth']} px wide in a {checks['width']} px window")
        return found


class Chromium:
    """One headless Chromium process, driven over its DevTools websocket."""

    def __init__(self, executable: str, *, timeout: float = 60.0):
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="reliability-chromium-")  # a fresh profile every time
        self._process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-port=0",
             f"--window-size={WINDOW[0]},{WINDOW[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._socket = websocket.create_connection(self._browser_url(), timeout=timeout, suppress_origin=True)
        self._next_id = 0
        self._events: list[dict] = []

    def _browser_url(self) -> str:
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self._process.returncode} at start")
            if port_file.exists():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise RuntimeError("chromium did not open its DevTools port in time")

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Call one DevTools method and wait for its answer (events meanwhile are kept)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._socket.send(json.dumps(message))
        while True:
            reply = json.loads(self._socket.recv())
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == method and e.get("sessionId") == session for e in self._events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {self.timeout} s")
            self._events.append(json.loads(self._socket.recv()))

    def _open_page(self) -> tuple[str, str]:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False}, session)
        return target, session

    def inspect(self, page: Path, screenshot: Path | None = None, *, max_height: int = 12000) -> PageReport:
        """Load ``page`` (a local file), check it, and save a full-page screenshot if asked."""
        page = Path(page).resolve()
        folder = page.parent.as_uri() + "/"
        target, session_id = self._open_page()
        self._events = []
        self.send("Page.navigate", {"url": page.as_uri()}, session_id)
        self._wait_for("Page.loadEventFired", session_id)
        time.sleep(0.2)  # let late console messages arrive
        checks = self.send("Runtime.evaluate", {"expression": _PAGE_CHECKS, "returnByValue": True},
                           session_id)["result"]["value"]
        report = PageReport(url=page.as_uri(), checks=checks)
        self._read_events(report, folder, session_id)
        if screenshot is not None:
            height = min(int(checks.get("height", WINDOW[1])), max_height)
            shot = self.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": WINDOW[0], "height": height, "scale": 1},
            }, session_id)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            report.screenshot = screenshot
        self.send("Target.closeTarget", {"targetId": target})
        return report

    def _read_events(self, report: PageReport, folder: str, session: str) -> None:
        requests: dict[str, str] = {}
        for event in self._events:
            if event.get("sessionId") != session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                report.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                      for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                report.console_errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                report.console_errors.append(f"{entry.get('text', '')} {entry.get('url', '')}".strip())
            elif method == "Network.requestWillBeSent":
                url = params.get("request", {}).get("url", "")
                requests[params.get("requestId", "")] = url
                if not (url.startswith(("data:", "about:", "blob:")) or url.startswith(folder)):
                    report.outside_requests.append(url[:120])
            elif method == "Network.loadingFailed":
                url = requests.get(params.get("requestId", ""), "?")
                report.failed_requests.append(f"{url[:120]} ({params.get('errorText', '')})")

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        try:
            self.send("Browser.close")
        except Exception:  # the browser may already be gone
            pass
        self._socket.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self._profile, ignore_errors=True)
