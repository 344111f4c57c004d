"""What a reader of the built book sees, measured in Chromium: each function takes a loaded
Playwright page and returns a list of problems (empty when the page is fine).

Run it on one page while writing a chapter:

    .venv/bin/python tests/reader_checks.py book/03_bptt.html
"""
from __future__ import annotations

import re

MIN_TEXT_PX = 10.0          # smallest text in a figure, in CSS pixels on the page
MAX_OWN_BYTES = 1_500_000   # a page's own bytes (HTML, its figures), shared scripts excluded

WAIT_FOR_MATH = "async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }"

RENDERING = r"""() => {
  const article = document.querySelector('.bd-article');
  const problems = [];
  // Text a reader sees, without code and without typeset formulas.
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, mjx-container, script, style, .cell_output')
       .forEach(e => e.remove());
  document.body.appendChild(clone);
  clone.style.position = 'absolute'; clone.style.left = '-20000px'; clone.style.width = '700px';
  const text = clone.innerText;
  clone.remove();
  const patterns = [
    [/(```|:::)\s*\{[a-z-]+\}/, 'raw MyST directive'],
    [/:class:\s*dropdown|\{admonition\}|\{code-cell\}|\{exercise\}/, 'raw directive option'],
    [/\$[^\s$]/, 'a $ sign (unrendered math)'],
    [/\\(frac|partial|mathrm|sum|prod|odot|tanh|sigma|phi|left|right|overset|tilde|hat|[()\[\]])/, 'raw TeX command'],
    [/[A-Za-z0-9)][_^]\{/, 'raw TeX sub- or superscript'],
  ];
  for (const [re, what] of patterns) {
    const m = text.match(re);
    if (m) problems.push(`${what}: ...${text.slice(Math.max(0, m.index - 60), m.index + 60).replace(/\s+/g, ' ')}...`);
  }
  for (const e of article.querySelectorAll('mjx-merror, .MathJax_Error'))
    problems.push(`MathJax error: ${e.textContent.slice(0, 80)}`);
  for (const e of article.querySelectorAll('span.math, div.math'))
    if (!e.querySelector('mjx-container')) problems.push(`formula not typeset: ${e.textContent.slice(0, 80)}`);
  return problems;
}"""

WIDE_EQUATIONS = r"""() => Array.from(document.querySelectorAll('.bd-article mjx-container[display="true"]'))
  .map(e => [e, e.querySelector('svg').getBoundingClientRect().width, e.parentElement.clientWidth])
  .filter(([e, width, box]) => width > box + 1)
  .map(([e, width, box]) => `equation ${width.toFixed(0)}px wide in a ${box}px box: ` +
       `equation ${[...document.querySelectorAll('.bd-article mjx-container[display="true"]')].indexOf(e) + 1} ` +
       `of the page, in the section "${(e.closest('section') && e.closest('section').querySelector('h1,h2,h3') || {}).textContent}"`)"""

VISIBLE_CODE = r"""() => Array.from(document.querySelectorAll('.bd-article .cell_input pre'))
  .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
  .map(e => {
    const line = e.textContent.split('\n').reduce((a, b) => (b.length > a.length ? b : a), '');
    return `code wider than the column (${e.scrollWidth}px > ${e.clientWidth}px): ${line.trim().slice(0, 70)}`;
  })"""

FIGURES = r"""async (minPx) => {
  const problems = [];
  const article = document.querySelector('.bd-article');
  const describe = (el) => (el.getAttribute('src') || el.getAttribute('aria-label') || '').slice(-50);
  // Static figures: an image of a cell's output, in a figure with a caption and a real alt text.
  for (const img of article.querySelectorAll('.cell_output img')) {
    const alt = (img.getAttribute('alt') || '').trim();
    if (alt.length < 20 || /\.(svg|png|jpe?g)$/i.test(alt) || alt.includes('/'))
      problems.push(`image without a descriptive alt text (${JSON.stringify(alt)}): ${describe(img)}`);
    const figure = img.closest('figure');
    const caption = figure && figure.querySelector('figcaption');
    if (!caption || caption.innerText.trim().length < 20)
      problems.push(`image without a caption: ${describe(img)}`);
    if (!/\.svg(\?|$)/.test(img.getAttribute('src') || ''))
      problems.push(`bitmap figure (draw it as SVG, with real text): ${describe(img)}`);
  }
  // Kernel-free explorers: a caption, and an accessible name on every drawn frame.
  for (const box of article.querySelectorAll('.rnnkit-explorer')) {
    const caption = box.querySelector('.rnnkit-caption');
    if (!caption || caption.innerText.trim().length < 20) problems.push('widget without a caption');
    for (const svg of box.querySelectorAll('.rnnkit-frame > svg'))
      if ((svg.getAttribute('aria-label') || '').trim().length < 20)
        problems.push('widget frame without a description (aria-label)');
  }
  // Text size on the page: every SVG figure, as shown now (widget frames: the visible one).
  const svgs = [];
  for (const img of article.querySelectorAll('.cell_output img')) {
    if (!/\.svg(\?|$)/.test(img.getAttribute('src') || '')) continue;
    const markup = await (await fetch(img.src)).text();
    const holder = document.createElement('div');
    holder.style.cssText = `position:absolute;left:-30000px;top:0;width:${img.getBoundingClientRect().width}px`;
    holder.innerHTML = markup.replace(/<\?xml[^>]*>|<!DOCTYPE[^>]*>/g, '');
    document.body.appendChild(holder);
    const svg = holder.querySelector('svg');
    svg.removeAttribute('height');
    svg.style.width = '100%'; svg.style.height = 'auto';
    svgs.push([svg, describe(img), holder]);
  }
  for (const svg of article.querySelectorAll('.rnnkit-frame svg'))
    if (svg.getBoundingClientRect().width > 0) svgs.push([svg, describe(svg), null]);
  for (const [svg, name, holder] of svgs) {
    const groups = new Map();
    for (const t of svg.querySelectorAll('text, tspan')) {
      if (!t.textContent.trim()) continue;
      const ctm = t.getScreenCTM();
      if (!ctm) continue;
      const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(ctm.a, ctm.b);
      const key = t.closest('g[id^="text_"]') || t.closest('text') || t;
      const entry = groups.get(key) || {px: 0, text: ''};
      entry.px = Math.max(entry.px, px);
      entry.text += t.textContent;
      groups.set(key, entry);
    }
    const small = [...groups.values()].filter(g => g.px < minPx - 0.05);
    if (small.length) {
      const worst = small.reduce((a, b) => (b.px < a.px ? b : a));
      problems.push(`${small.length} text(s) smaller than ${minPx}px in ${name}, ` +
                    `smallest ${worst.px.toFixed(1)}px: ${JSON.stringify(worst.text.slice(0, 40))}`);
    }
    if (holder) holder.remove();
  }
  return problems;
}"""

PHONE = r"""() => {
  const problems = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1)
    problems.push(`the page scrolls sideways: ${doc.scrollWidth}px content in a ${window.innerWidth}px window`);
  // Everything in the article must fit inside it, unless it sits in a box that scrolls sideways
  // (wide equations, tables, code and widget frames scroll in their own box).
  const article = document.querySelector('.bd-article');
  const box = article.getBoundingClientRect();
  const scrolls = (e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
  const walk = (e) => {
    for (const child of e.children) {
      const r = child.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;       // not displayed
      if (r.right > box.right + 1 || r.left < box.left - 1) {
        problems.push(`<${child.tagName.toLowerCase()} class="${String(child.className).slice(0, 60)}"> ` +
                      `reaches ${Math.round(r.left)}..${Math.round(r.right)}px, outside the ` +
                      `${Math.round(box.left)}..${Math.round(box.right)}px column: ` +
                      JSON.stringify((child.textContent || '').trim().slice(0, 50)));
        continue;                                           // report the outermost only
      }
      if (scrolls(child) || child.tagName === 'svg' || child.tagName === 'MJX-CONTAINER') continue;
      walk(child);
    }
  };
  walk(article);
  return problems;
}"""


def rendering_problems(page) -> list[str]:
    page.evaluate(WAIT_FOR_MATH)
    return page.evaluate(RENDERING)


def wide_equations(page) -> list[str]:
    page.evaluate(WAIT_FOR_MATH)
    return page.evaluate(WIDE_EQUATIONS)


def code_overflow(page) -> list[str]:
    return page.evaluate(VISIBLE_CODE)


def figure_problems(page) -> list[str]:
    return page.evaluate(FIGURES, MIN_TEXT_PX)


def phone_problems(page) -> list[str]:
    page.evaluate(WAIT_FOR_MATH)
    return page.evaluate(PHONE)


def own_bytes(responses: dict[str, int], base: str) -> int:
    """Bytes of a page that are its own: everything but the shared files under _static/."""
    return sum(size for url, size in responses.items()
               if not re.match(re.escape(base) + r"/_static/", url))


def load(page, url: str, *, width: int = 1280, height: int = 900) -> dict[str, int]:
    """Open a page at a viewport size, wait for widgets and formulas; returns the body size of
    every response by URL."""
    responses: dict[str, int] = {}

    def record(response):
        try:
            responses[response.url] = len(response.body())
        except Exception:  # redirects and failed requests have no body
            pass

    page.on("response", record)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(url, wait_until="networkidle")
    if page.locator("script[type='application/vnd.jupyter.widget-view+json']").count():
        page.wait_for_selector(".rnnkit-explorer, .jupyter-widgets", timeout=15000)
    page.evaluate(WAIT_FOR_MATH)
    page.wait_for_timeout(300)
    return responses


if __name__ == "__main__":  # a report for the pages named on the command line
    import sys
    from pathlib import Path

    from browser import chromium, serve

    site = Path(__file__).resolve().parent.parent / "_build" / "html"
    with chromium() as context, serve(site) as base:
        for path in sys.argv[1:]:
            page = context.new_page()
            sizes = load(page, f"{base}/{path}")
            found = (rendering_problems(page) + wide_equations(page) + code_overflow(page)
                     + figure_problems(page))
            found.append(f"own bytes: {own_bytes(sizes, base) / 1e6:.2f} MB")
            load(page, f"{base}/{path}", width=390, height=844)
            found += [f"phone: {p}" for p in phone_problems(page)]
            print(f"== {path}")
            for line in found:
                print("  " + line)
            page.close()
