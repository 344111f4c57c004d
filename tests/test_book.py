"""The course builds executed with warnings as errors, and every chapter works in a real browser:
no console error, no failed request, every figure loads, every widget is a real control that changes
what it shows, with no kernel and nothing fetched from the internet."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from browser import PageWatch, chromium, serve

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"


def chapter_pages() -> list[str]:
    """Every page of _toc.yml, as paths relative to the site."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    return [f + ".html" for f in files]


@pytest.fixture(scope="module")
def site():
    """Build the book (cached execution: only changed chapters re-run) with warnings as errors."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "tools/build_book.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return SITE


@pytest.mark.slow
def test_book_builds_without_warnings(site):
    for page in chapter_pages():
        assert (site / page).is_file(), f"{page} was not built"


@pytest.fixture(scope="module")
def browser_context(site):
    with chromium() as context, serve(site) as url:
        yield context, url


def _explorer_changes(page, explorer, control) -> bool:
    """Operate one control and report whether the explorer shows something else afterwards."""
    before = explorer.screenshot()
    classes = control.get_attribute("class") or ""
    if "widget-slider" in classes or control.locator(".noUi-handle").count():
        handle = control.locator(".noUi-handle").first
        handle.focus()
        handle.press("End")
    elif control.locator("select").count():
        select = control.locator("select").first
        select.select_option(index=select.locator("option").count() - 1)
    else:
        control.locator("button").last.click()
    page.wait_for_timeout(300)
    return explorer.screenshot() != before


@pytest.mark.browser
@pytest.mark.parametrize("page_path", chapter_pages())
def test_chapter_in_browser(browser_context, page_path):
    context, url = browser_context
    page = context.new_page()
    watch = PageWatch(page)
    page.goto(f"{url}/{page_path}", wait_until="networkidle")
    if page.locator("script[type='application/vnd.jupyter.widget-view+json']").count():
        page.wait_for_selector(".rnnkit-explorer, .jupyter-widgets", timeout=15000)
    page.wait_for_timeout(500)

    broken = page.evaluate("""() => Array.from(document.images)
        .filter(img => !(img.complete && img.naturalWidth > 0))
        .map(img => img.src.slice(0, 80))""")
    assert not broken, f"images that did not load: {broken}"

    explorers = page.locator(".rnnkit-explorer")
    views = page.locator("script[type='application/vnd.jupyter.widget-view+json']").count()
    assert explorers.count() == views, f"{views} widgets in the page, {explorers.count()} rendered"
    for i in range(explorers.count()):
        explorer = explorers.nth(i)
        explorer.scroll_into_view_if_needed()
        controls = explorer.locator(".rnnkit-control")
        assert controls.count() >= 1, f"widget {i} has no control"
        for j in range(controls.count()):
            assert _explorer_changes(page, explorer, controls.nth(j)), \
                f"operating control {j} of widget {i} changed nothing on the page"

    assert not watch.failed, f"failed requests: {watch.failed}"
    assert not watch.errors, f"console errors: {watch.errors}"
    page.close()
