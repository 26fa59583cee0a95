"""Open every page of the built site in a real browser (headless Chromium from Debian's packages, driven by
its chromedriver over the W3C WebDriver protocol: plain HTTP, no extra package) and check what a reader sees:

- no unrendered math in the visible prose (``$$``, ``\\frac``, ``\\mathbb``; code and the outputs of code cells
  are left out: a tweet in a table may well say "$$");
- every image loaded, with a non-zero natural size;
- every internal link resolving (fetched from the same local server);
- every ``<details>`` (folded solutions and answers) closed on load;
- no errors in the browser's console.

It writes screenshots of the home page and of two notebook pages (their top, first plot and first folded
solution) to ``build/site-screenshots/``, for a person to look at.

Usage: ``python tools/check_site.py [build/site]`` (``make site`` first); exit 1 with the problems listed.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
UNRENDERED = ("$$", "\\frac", "\\mathbb")
SCREENSHOT_NOTEBOOKS = ("01_", "06_")  # the SFT loss (math, plots) and the DPO derivation (folded answers)

# the visible text outside code, the images, links and <details> of the page, once MathJax has typeset it
PAGE_STATE = """
const done = arguments[arguments.length - 1];
const report = () => {
  const style = document.createElement("style");
  style.textContent = "pre, code, .highlight, .jp-OutputArea { display: none !important; }";
  document.head.appendChild(style);
  const text = document.body.innerText;
  style.remove();
  done({
    text: text,
    images: [...document.images].map(i => ({src: i.src.slice(0, 80), ok: i.complete && i.naturalWidth > 0})),
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    details: [...document.querySelectorAll("details")].map(d => d.open),
  });
};
const started = Date.now();
const wait = () => {  // until MathJax (loaded by every page) has typeset the page
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) MathJax.startup.promise.then(report);
  else if (Date.now() - started > 10000) report();
  else setTimeout(wait, 50);
};
if (document.readyState === "complete") wait(); else window.addEventListener("load", wait);
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    """The few WebDriver commands the check needs, against a chromedriver it starts."""

    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        options = {"binary": CHROMIUM, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                                "--disable-dev-shm-usage", "--window-size=1280,1000"]}
        capabilities = {"browserName": "chrome", "goog:chromeOptions": options,
                        "goog:loggingPrefs": {"browser": "ALL"}, "timeouts": {"script": 20000}}
        self.session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"WebDriver {method} {path}: {error.read().decode()[:500]}") from None

    def command(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str):
        self.command("POST", "/url", {"url": url})

    def run_async(self, script: str):
        return self.command("POST", "/execute/async", {"script": script, "args": []})

    def run(self, script: str):
        return self.command("POST", "/execute/sync", {"script": script, "args": []})

    def console(self) -> list[dict]:
        return self.command("POST", "/se/log", {"type": "browser"})

    def screenshot(self, path: Path):
        path.write_bytes(base64.b64decode(self.command("GET", "/screenshot")))

    def close(self):
        try:
            self.command("DELETE", "")
        finally:
            self.process.terminate()
            self.process.wait(timeout=30)


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # the browser closing a connection early (a page left before a script loaded) is no problem
    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def resolves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.split("#")[0], timeout=30) as response:
            return response.status == 200
    except urllib.error.URLError:
        return False


def check_page(driver: WebDriver, url: str, base: str, checked_links: dict) -> list[str]:
    """What is wrong on the page at ``url`` (empty if nothing)."""
    driver.open(url)
    state = driver.run_async(PAGE_STATE)
    problems = [f"unrendered {token!r} in the visible text" for token in UNRENDERED if token in state["text"]]
    problems += [f"image not loaded: {image['src']}" for image in state["images"] if not image["ok"]]
    if any(state["details"]):
        problems.append(f"{sum(state['details'])} of {len(state['details'])} <details> open on load")
    for link in state["links"]:
        if link.startswith(base):
            target = link.split("#")[0]
            if target not in checked_links:
                checked_links[target] = resolves(target)
            if not checked_links[target]:
                problems.append(f"broken link: {target.removeprefix(base)}")
    problems += [f"console: {entry['message'][:200]}" for entry in driver.console() if entry["level"] == "SEVERE"]
    return problems


def screenshots(driver: WebDriver, base: str, pages: list[str], folder: Path) -> list[Path]:
    """The home page's top; for two notebooks their top, first plot and first folded <details>."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    driver.open(base + "index.html")
    driver.run_async(PAGE_STATE)
    written.append(folder / "home.png")
    driver.screenshot(written[-1])
    for prefix in SCREENSHOT_NOTEBOOKS:
        page = next(p for p in pages if p.startswith(f"notebooks/{prefix}"))
        name = Path(page).stem[:2]
        driver.open(base + page)
        driver.run_async(PAGE_STATE)
        for what, selector in (("top", None), ("plot", ".jp-OutputArea-output img"), ("details", "details")):
            if selector:
                found = driver.run(f"const e = document.querySelector('{selector}'); "
                                   "if (e) e.scrollIntoView({block: 'center'}); return !!e;")
                if not found:
                    continue
                time.sleep(0.5)  # the header's title swaps with an animation on scrolling
            written.append(folder / f"notebook-{name}-{what}.png")
            driver.screenshot(written[-1])
    return written


def check_site(site: Path, screenshot_folder: Path) -> tuple[dict[str, list[str]], list[Path]]:
    """Every page's problems (pages without any left out) and the screenshots written."""
    if not (site / "index.html").exists():
        raise FileNotFoundError(f"check_site: no site in {site}; run `make site` first")
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                   if not p.relative_to(site).parts[0] == "assets")
    server, base = serve(site)
    driver = WebDriver()
    try:
        checked_links: dict[str, bool] = {}
        problems = {page: check_page(driver, base + page, base, checked_links) for page in pages}
        written = screenshots(driver, base, pages, screenshot_folder)
    finally:
        driver.close()
        server.shutdown()
    return {page: found for page, found in problems.items() if found}, written


def browser_available() -> bool:
    return bool(shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER))


def main():
    site = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "site"
    if not browser_available():
        print(f"browser check SKIPPED: no {CHROMIUM} and {CHROMEDRIVER} here "
              "(Debian: apt-get install chromium chromium-driver)")
        return
    start = time.perf_counter()
    problems, written = check_site(site, ROOT / "build" / "site-screenshots")
    for page, found in problems.items():
        print(f"{page}:\n  " + "\n  ".join(found))
    pages = len(list(site.rglob("*.html")))
    print(f"browser check of {pages} pages in {time.perf_counter() - start:.0f}s: "
          f"{'FAILED' if problems else 'passed'}; screenshots: {', '.join(str(p) for p in written)}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
