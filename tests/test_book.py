"""The course builds executed with warnings as errors, and every page works for a reader in a real
browser: no console error, no failed request, every figure loads and every widget is a real control
that changes what it shows, with no kernel and nothing fetched from the internet; the text renders
(no raw directives or TeX, no MathJax error, no equation wider than the column), figures have
captions, alt texts and legible text, code fits the column, phones never scroll sideways, each page
stays light, every chapter links its exercise as a download served by the site itself, search
snippets carry no TeX, and the Pages workflow builds with the README's command."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import reader_checks as checks
from browser import PageWatch, chromium, serve

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"
CODE_WIDTH = 75  # characters of code that fit the column at 1280 px


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    return files


def chapter_pages() -> list[str]:
    """Every page of _toc.yml, as paths relative to the site."""
    return [f + ".html" for f in toc_files()]


def numbered_chapters() -> list[str]:
    """book/03_bptt and the like: the pages that teach, in reading order."""
    return [f for f in toc_files() if re.match(r"book/\d\d_", f)]


# ---------------------------------------------------------------------------------------------
# Checks on the sources: no build needed.

def test_chapters_are_read_in_number_order():
    """Nothing is used before it is taught: the table of contents lists chapter 1, 2, 3, ..."""
    numbers = [int(Path(f).name[:2]) for f in numbered_chapters()]
    assert numbers == sorted(numbers) == list(range(1, len(numbers) + 1)), numbers


def test_chapter_n_links_exercise_n():
    """Chapter N ends with the graded exercise whose folder starts with N (10 also with 11)."""
    released = sorted(p.name for p in (ROOT / "exercises").iterdir() if p.is_dir())
    linked = []
    for chapter in numbered_chapters():
        text = (ROOT / f"{chapter}.md").read_text()
        names = re.findall(r"^:::\{exercise\} (\S+)", text, re.M)
        number = Path(chapter).name[:2]
        assert names and names[0].startswith(number), \
            f"{chapter} links {names or 'no exercise'}, expected one starting with {number}_"
        linked += names
    assert sorted(linked) == released, f"linked {sorted(linked)}, released {released}"


def test_shown_code_fits_the_column():
    """Every line of a code cell a reader can see (unfolded or folded) fits the column."""
    long = []
    for md in sorted((ROOT / "book").glob("*.md")):
        lines = md.read_text().split("\n")
        for i, line in enumerate(lines):
            if not line.startswith("```{code-cell}"):
                continue
            j, removed = i + 1, False
            if lines[j] == "---":                     # YAML options: not shown
                j += 1
                while lines[j] != "---":
                    removed |= "remove-cell" in lines[j]
                    j += 1
                j += 1
            while lines[j].startswith(":") and not lines[j].startswith(":::"):
                removed |= "remove-cell" in lines[j]
                j += 1
            while not lines[j].startswith("```"):
                if not removed and len(lines[j]) > CODE_WIDTH:
                    long.append(f"{md.name}:{j + 1}: {len(lines[j])} characters")
                j += 1
    assert not long, f"code lines longer than {CODE_WIDTH} characters:\n" + "\n".join(long)


def readme_build_command() -> str:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return next(line.split("#")[0].strip() for line in block.splitlines()
                if line.strip().startswith("make book"))


def test_pages_workflow_builds_with_the_readme_command_and_deploys_the_site():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job.get("steps", [])]
    runs = [step.get("run", "") for step in steps]
    command = readme_build_command()
    assert any(command in run.split("\n") for run in runs), \
        f"no step runs the README's build command {command!r}; the steps run {runs}"
    uploads = [step for step in steps if "upload-pages-artifact" in step.get("uses", "")]
    assert uploads and uploads[0]["with"]["path"] == "_build/html", uploads
    assert any("deploy-pages" in step.get("uses", "") for step in steps)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert "push" in triggers, triggers


# ---------------------------------------------------------------------------------------------
# The built book.

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


@pytest.mark.slow
def test_site_serves_the_released_exercises(site):
    for folder in (ROOT / "exercises").iterdir():
        for path in folder.rglob("*"):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                copy = site / "exercises" / path.relative_to(ROOT / "exercises")
                assert copy.is_file() and copy.read_bytes() == path.read_bytes(), copy


REQUESTS: list[tuple[str, int]] = []  # what the test server sent: (path, status)


@pytest.fixture(scope="module")
def browser_context(site):
    with chromium(accept_downloads=True) as context, serve(site, log=REQUESTS) as url:
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


@pytest.fixture(scope="module", params=chapter_pages())
def loaded(request, browser_context):
    """One page opened at 1280x900, shared by the checks below (pytest runs them page by page):
    (path, page, response sizes by URL, console and request watcher)."""
    context, url = browser_context
    page = context.new_page()
    watch = PageWatch(page)
    sizes = checks.load(page, f"{url}/{request.param}")
    yield request.param, page, sizes, watch
    page.close()


@pytest.mark.browser
def test_text_renders(loaded):
    """No raw directive text, unrendered TeX or $, no MathJax error, no equation wider than its box."""
    _, page, _, _ = loaded
    problems = checks.rendering_problems(page) + checks.wide_equations(page)
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_figures_have_captions_alt_texts_and_legible_text(loaded):
    _, page, _, _ = loaded
    problems = checks.figure_problems(page)
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_visible_code_fits_the_column(loaded):
    _, page, _, _ = loaded
    problems = checks.code_overflow(page)
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_page_weight(loaded, browser_context):
    """A page's own bytes (HTML, figures) stay under the limit; the shared scripts are separate."""
    path, _, sizes, _ = loaded
    own = checks.own_bytes(sizes, browser_context[1])
    assert own <= checks.MAX_OWN_BYTES, f"{path}: {own / 1e6:.2f} MB of its own"


@pytest.mark.browser
def test_chapter_in_browser(loaded):
    """Every image loads, every widget renders and each of its controls changes the picture,
    with no console error and no failed request."""
    _, page, _, watch = loaded
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


@pytest.mark.browser
def test_shared_scripts_are_cached_between_pages(browser_context):
    """MathJax, the widget manager and the theme's scripts are files the browser keeps: opening a
    second page does not download them again."""
    context, url = browser_context
    page = context.new_page()
    context.new_cdp_session(page).send("Network.clearBrowserCache")
    REQUESTS.clear()
    checks.load(page, f"{url}/book/04_vanishing_exploding.html")
    first = {path for path, status in REQUESTS if status == 200}
    REQUESTS.clear()
    checks.load(page, f"{url}/book/06_gru.html")
    again = sorted(path for path, status in REQUESTS
                   if status == 200 and path.split("?")[0].endswith(".js") and path in first)
    page.close()
    shared = [path for path in first if "/_static/" in path and path.split("?")[0].endswith(".js")]
    assert len(shared) >= 3, f"expected the shared scripts under _static/, loaded {sorted(first)}"
    assert not again, f"downloaded again on the second page: {again}"


@pytest.mark.browser
@pytest.mark.parametrize("page_path", chapter_pages())
def test_phone_layout(browser_context, page_path):
    """At 390x844 no page scrolls sideways; wide content scrolls inside its own box."""
    context, url = browser_context
    page = context.new_page()
    checks.load(page, f"{url}/{page_path}", width=390, height=844)
    problems = checks.phone_problems(page)
    page.close()
    assert not problems, "\n".join(problems)


def _download_links(page) -> list[str]:
    return page.eval_on_selector_all(
        "a.exercise-download", "links => links.map(a => a.getAttribute('href'))")


@pytest.mark.browser
@pytest.mark.parametrize("page_path", ["book/start_here.html"] + [f + ".html" for f in numbered_chapters()])
def test_exercise_downloads(browser_context, page_path):
    """Clicking each exercise link downloads exactly the released file from exercises/."""
    context, url = browser_context
    page = context.new_page()
    page.goto(f"{url}/{page_path}", wait_until="networkidle")
    hrefs = _download_links(page)
    expected = 11 if page_path.endswith("start_here.html") else 1
    assert len(hrefs) >= expected, f"{page_path} links {len(hrefs)} exercise files, expected {expected}"
    page.close()
    for i, href in enumerate(hrefs):
        # a fresh page for each file: Chromium holds back a page's downloads after the tenth
        page = context.new_page()
        page.goto(f"{url}/{page_path}", wait_until="networkidle")
        link = page.locator("a.exercise-download").nth(i)
        link.scroll_into_view_if_needed()
        with page.expect_download(timeout=90_000) as download:
            link.click()
        relative = href.split("exercises/", 1)[1]
        released = ROOT / "exercises" / relative
        data = Path(download.value.path()).read_bytes()
        assert download.value.suggested_filename == released.name
        assert data == released.read_bytes(), f"{href}: the download differs from exercises/{relative}"
        page.close()


@pytest.mark.browser
def test_search_snippets_show_no_tex(browser_context):
    context, url = browser_context
    page = context.new_page()
    page.goto(f"{url}/search.html?q=jacobian", wait_until="networkidle")
    page.wait_for_selector("#search-results ul.search li p.context", timeout=20000)
    page.wait_for_timeout(1500)
    snippets = page.eval_on_selector_all("#search-results p.context", "ps => ps.map(p => p.textContent)")
    page.close()
    assert snippets, "the search found nothing"
    raw = [s for s in snippets if re.search(r"\\[A-Za-z(\[]|\$|[_^]\{", s)]
    assert not raw, f"snippets with TeX: {raw[:3]}"
