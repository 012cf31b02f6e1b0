"""A small Chrome DevTools Protocol driver for headless Chromium (tests only).

Starts Debian's ``chromium`` with ``--remote-debugging-port=0``, reads the port it chose from
``DevToolsActivePort`` in its profile folder, opens one page target and talks to it over a
websocket (tornado's client, already installed with Jupyter). Enough to load a file URL at a
given window width, evaluate JavaScript and take a screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-port=0", "--remote-allow-origins=*"]


def chromium_binary() -> str | None:
    """``chromium`` (Debian) or ``chromium-browser`` on PATH, else None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium and one page; use as a context manager."""

    def __init__(self, binary: str, timeout: float = 60.0) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="cti-chromium-"))
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.timeout, self.loop, self._id = timeout, asyncio.new_event_loop(), 0
        port_file, t0 = self.profile / "DevToolsActivePort", time.monotonic()
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() - t0 > timeout or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        try:
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            from tornado.websocket import websocket_connect

            async def connect():  # the future must belong to this loop
                return await websocket_connect(pages[0]["webSocketDebuggerUrl"], max_message_size=512 * 2**20)

            self.ws = self.loop.run_until_complete(connect())
            self.call("Page.enable")
            self.call("Runtime.enable")
        except Exception:
            self.close()
            raise

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one CDP command and wait for its answer (events in between are dropped)."""
        self._id += 1
        mid = self._id

        async def go() -> dict[str, Any]:
            await self.ws.write_message(json.dumps({"id": mid, "method": method, "params": params}))
            while True:
                msg = await asyncio.wait_for(self.ws.read_message(), self.timeout)
                if msg is None:
                    raise RuntimeError("devtools connection closed")
                data = json.loads(msg)
                if data.get("id") == mid:
                    if "error" in data:
                        raise RuntimeError(f"{method}: {data['error']}")
                    return data.get("result", {})

        return self.loop.run_until_complete(go())

    def open(self, url: str, width: int, height: int = 900) -> None:
        """Load ``url`` in a ``width`` px wide window and wait until the document is complete."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.evaluate("window.__cti_old = true")  # gone once the new document has replaced this one
        self.call("Page.navigate", url=url)
        t0 = time.monotonic()
        while self.evaluate("document.readyState") != "complete" or self.evaluate("window.__cti_old === true"):
            if time.monotonic() - t0 > self.timeout:
                raise TimeoutError(url)
            time.sleep(0.05)
        self.evaluate("document.fonts ? document.fonts.ready.then(() => true) : true", await_promise=True)

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"].get("text", "JS error"))
        return r.get("result", {}).get("value")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole page when ``full_page``)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            w, h = self.evaluate("[document.documentElement.clientWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": w, "height": min(h, 12000), "scale": 1}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))
        return path

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)
            self.loop.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Elements whose content runs past their box without a way to scroll it: a table, pre or figure
# wider than its own visible box (scrollWidth > clientWidth) while its overflow is hidden or
# visible, or whose right edge lies beyond the article column; a table cell cut with an ellipsis.
# With ``fit`` (the check at 1400 px) an element must fit the column even inside a scroll box,
# except the collapsed full tables (cells tagged ``hide-output``).
OVERFLOW_JS = r"""
((fit) => {
  const col = document.querySelector('.bd-article') || document.querySelector('main') || document.body;
  const right = col.getBoundingClientRect().right + 1;
  const out = [];
  for (const el of col.querySelectorAll('table, pre, img, svg, .cell_output, div.highlight')) {
    if (el.closest('.cti-scroll-ok')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    const st = getComputedStyle(el);
    const scrolls = ['auto', 'scroll'].includes(st.overflowX);
    let inScroller = false;
    for (let p = el.parentElement; p && p !== col; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll') { inScroller = true; break; }
    }
    const clipped = el.scrollWidth > el.clientWidth + 1 && !scrolls;
    const past = r.right > right && (!inScroller || fit);
    // the collapsed machine-readable "full" tables (hide-output) may scroll at any width
    const wide = fit && el.scrollWidth > col.clientWidth + 1 && !el.closest('details, .tag_hide-output');
    const ell = [...el.querySelectorAll('td, th')].some(c => getComputedStyle(c).textOverflow === 'ellipsis'
                                                          && c.scrollWidth > c.clientWidth + 1);
    if (clipped || past || ell || wide) out.push({tag: el.tagName.toLowerCase(), cls: el.className && String(el.className).slice(0, 60),
      scrollWidth: el.scrollWidth, clientWidth: el.clientWidth, right: Math.round(r.right), column: Math.round(right),
      text: (el.innerText || '').slice(0, 60)});
  }
  return out;
})(FIT)
"""


def overflow_js(fit: bool) -> str:
    """:data:`OVERFLOW_JS` with ``fit`` (true: everything must fit the column, no scrolling)."""
    return OVERFLOW_JS.replace("(FIT)", "(true)" if fit else "(false)")
