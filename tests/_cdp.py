"""A real headless Chromium driven over the DevTools protocol (websocket-client): pages are
loaded, typed into and clicked as a person would (key input and mouse events at the element's
place on the screen), screenshots taken at a given window size."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

from conftest import free_port

# The page's layout, measured in the page: a scrollbar (the document larger than the window),
# and text boxes that overlap (every visible text node's own rectangles, compared pairwise;
# text inside one element may touch itself, two different texts may not cover each other).
LAYOUT_JS = r"""
(() => {
  const de = document.documentElement;
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const t = walker.currentNode;
    if (!t.textContent.trim()) continue;
    const el = t.parentElement;
    const cs = getComputedStyle(el);
    if (cs.visibility === "hidden" || el.closest("script,style,option")) continue;
    const r = document.createRange();
    r.selectNodeContents(t);
    for (const b of r.getClientRects()) {
      if (b.width < 1 || b.height < 1) continue;
      boxes.push({text: t.textContent.trim().slice(0, 40), el: el,
                  x0: b.left, y0: b.top, x1: b.right, y1: b.bottom});
    }
  }
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.el === b.el) continue;
    const w = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0);
    const h = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
    if (w > 1 && h > 1) overlaps.push([a.text, b.text]);
  }
  // text cut off: an element whose content is wider than its box (an ellipsis hides it)
  const clipped = [...document.querySelectorAll("body *")].filter(e => {
    const cs = getComputedStyle(e);
    return e.offsetParent !== null && e.children.length === 0 && e.textContent.trim()
      && e.tagName !== "OPTION" && e.scrollWidth > e.clientWidth + 1 && cs.overflow !== "visible";
  }).map(e => e.id || e.tagName + ":" + e.textContent.slice(0, 30));
  const offscreen = boxes.filter(b => b.x0 < -1 || b.y0 < -1 || b.x1 > innerWidth + 1
                                      || b.y1 > innerHeight + 1).map(b => b.text);
  return {scrollbars: de.scrollWidth > innerWidth || de.scrollHeight > innerHeight,
          scrollWidth: de.scrollWidth, scrollHeight: de.scrollHeight, width: innerWidth,
          height: innerHeight, texts: boxes.length, overlaps, clipped, offscreen};
})()
"""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page."""

    def __init__(self, chromium: str, profile: Path):
        port = free_port()
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--remote-debugging-port={port}", "--remote-allow-origins=*",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/json/list", timeout=2) as r:
                    pages = [p for p in json.load(r) if p.get("type") == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("Chromium's DevTools endpoint did not come up")
            time.sleep(0.2)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60,
                                              suppress_origin=True)
        self._id = 0
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, **params: Any) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression: str) -> Any:
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:80]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expression: str, timeout_s: float = 20.0) -> Any:
        """The value of ``expression`` once it is truthy (its last value after the timeout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            v = self.eval(expression)
            if v or time.monotonic() > deadline:
                return v
            time.sleep(0.2)

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait("document.readyState === 'complete'")

    def size(self, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def _centre(self, selector: str) -> tuple[float, float]:
        r = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                      "e.scrollIntoView({block: 'center'}); const b = e.getBoundingClientRect();"
                      " return [b.left + b.width / 2, b.top + b.height / 2, b.width]; })()")
        assert r[2] > 0, f"{selector} is not visible"
        return r[0], r[1]

    def click(self, selector: str) -> None:
        """A mouse click where the element is on the screen."""
        x, y = self._centre(selector)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)

    def type(self, selector: str, text: str) -> None:
        """Click into a field, clear it, and type ``text``."""
        self.click(selector)
        self.eval(f"document.querySelector({json.dumps(selector)}).select()")
        self.send("Input.insertText", text=text)

    def choose(self, selector: str, value: str) -> None:
        """Pick an option of a <select> (its value set and announced, as a choice does)."""
        self.eval(f"(() => {{ const s = document.querySelector({json.dumps(selector)}); "
                  f"s.value = {json.dumps(value)}; "
                  "s.dispatchEvent(new Event('change', {bubbles: true})); })()")

    def text(self, selector: str) -> str:
        return self.eval(f"document.querySelector({json.dumps(selector)}).innerText")

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def layout(self) -> dict:
        return self.eval(LAYOUT_JS)

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
