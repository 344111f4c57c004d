"""Headless Chromium for the browser tests: Debian's build driven by Playwright, nothing downloaded."""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def require_chromium():
    """Skip (or, in CI, fail) when Debian's Chromium is not installed."""
    if Path(CHROMIUM).exists():
        return
    message = (f"{CHROMIUM} is missing: install it as root with `apt-get install chromium` "
               "(make test does this when it runs as root)")
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; browser tests must run in CI")
    pytest.skip(message)


@contextlib.contextmanager
def serve(directory: Path, log: list | None = None):
    """Serve a folder on 127.0.0.1 on a free port; yields the base URL.

    With ``log``, every request is appended to it as ``(path, status)``: what the server sent,
    so a test can tell a file that was downloaded again from one the browser had cached."""
    handler = functools.partial(_QuietHandler, directory=str(directory), log=log)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, log=None, **kwargs):
        self._log = log
        super().__init__(*args, **kwargs)

    def log_request(self, code="-", size="-"):
        if self._log is not None:
            self._log.append((self.path, int(getattr(code, "value", code))))

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def chromium(accept_downloads: bool = False):
    """A Playwright browser on Debian's Chromium with a fresh profile."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                viewport={"width": 1280, "height": 900}, accept_downloads=accept_downloads,
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class PageWatch:
    """Collects console errors and failed requests of one page."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.failed: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"{m.text} at {m.location.get('url', '?')}"))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.url} (HTTP {r.status})"))
