#!/usr/bin/env python3
r"""Open every page of the built book in headless Chromium and check what a reader would see.

    python3 dev.py book          # builds the site into _build/html
    python3 dev.py site-check    # this script, in .venv; or: python tools/check_site.py [--help]

The site is served from ``127.0.0.1`` by Python's ``http.server``, so pages behave as they do
online, and every request that would leave the machine is blocked and reported: MathJax has to
come from the site itself (``sphinx-mathjax-offline``), and nothing is downloaded at test time.
Chromium is Debian's ``chromium`` package (``/usr/bin/chromium``), driven by Playwright (whose
own browser downloads are never used). Each page is opened in a 1280 px wide window, as by a
first-time visitor; once MathJax has finished, a full-page screenshot is saved in
``_build/screenshots/<page>.png``. Collapsed cells (``hide-input``, ``hide-output``) are then
opened so that what they hide is checked too. The checks, each reported with its page and
details, and each a failure (exit status 1):

console error
    A message the page logs at the error level (a script that fails, a resource that answers
    404), or an uncaught exception in the page's scripts.
external request
    A request to anything other than the local server (a CDN, a web font): blocked, since the book
    must work, and be tested, without the network.
math error
    MathJax did not run on a page with math, or rendered an error (``mjx-merror``: a TeX syntax
    error), an undefined macro (MathJax shows its name in red) or a literal backslash in text
    inside math (such as ``\texttt{a\_b}``, whose ``\_`` MathJax prints as is).
untypeset math
    TeX left in the article's text outside code: ``$``, ``$$``, ``\(``, ``\)``, ``\[``, ``\]``
    or a TeX command such as ``\frac``, which is what a reader sees when math was not recognised
    (for example a ``$$`` block inside a list item).
wide equation
    A display equation whose typeset width exceeds the space it has (its container, or the
    article's text column): the reader would have to scroll sideways or would not see it whole.
clipped code block
    A code cell, printed output or other ``<pre>`` in the article whose text is wider than its box
    (``scrollWidth > clientWidth + 1``) or whose box is wider than the text column.
broken link
    A link to a page or file of the site that does not exist.
broken anchor
    A link ``page.html#id`` (or ``#id``) whose target page has no element with that id once
    rendered.
broken image
    An image that does not load (a missing file, or one the browser cannot decode).
tiny figure
    A figure in the article shown at less than 60% of its natural width when that natural width
    is over 900 px: its text would be too small to read. The smallest scale of any figure is
    printed as information.

Pages that only redirect (the site's ``index.html``) are not opened; their target is checked as a
link. The summary at the end counts the findings of each kind; ``--json`` also writes them to a
file.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import re
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1280, 900
TINY_SCALE, TINY_NATURAL_PX = 0.6, 900
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The kinds of finding, in the order the summary prints them; all of them fail the check.
KINDS = (
    "console error",
    "external request",
    "math error",
    "untypeset math",
    "wide equation",
    "clipped code block",
    "broken link",
    "broken anchor",
    "broken image",
    "tiny figure",
)
REFRESH = re.compile(
    r"""<meta\s+http-equiv=["']refresh["']\s+content=["'][^"']*url=([^"']+)""", re.I
)


@dataclass
class Finding:
    page: str
    kind: str
    detail: str


@dataclass
class PageReport:
    """What one page's visit measured; ``ids`` and ``links`` are checked once all pages are in."""

    page: str
    findings: list[Finding] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)
    figure_scales: list[tuple[float, int, str]] = field(default_factory=list)  # scale, px, src
    typeset: int = 0  # formulas MathJax typeset


# In the page, once it has loaded: images load eagerly, then wait for MathJax's first typeset
# (when the page has MathJax), the web fonts and every image, each for at most `timeout` ms.
SETTLE_JS = """
async (timeout) => {
  const limit = (p) => Promise.race([p, new Promise((r) => setTimeout(r, timeout))]);
  document.querySelectorAll("img[loading=lazy]").forEach((img) => (img.loading = "eager"));
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) await limit(mj.startup.promise.catch(() => {}));
  await limit(document.fonts.ready);
  await limit(Promise.all([...document.images].map((img) => img.decode().catch(() => {}))));
}
"""

# Opens what a reader can open (collapsed cells, dropdowns), so that it is measured too.
OPEN_JS = """
() => {
  document.querySelectorAll("details").forEach((d) => (d.open = true));
  document.querySelectorAll(".toggle-hidden").forEach((e) => e.classList.remove("toggle-hidden"));
}
"""

# Everything measured in the rendered page, returned as plain data; Python decides what fails.
MEASURE_JS = r"""
async () => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main")
    || document.body;
  const style = getComputedStyle(article);
  const box = article.getBoundingClientRect();
  const columnRight = box.right - parseFloat(style.paddingRight);
  const columnWidth = article.clientWidth - parseFloat(style.paddingLeft)
    - parseFloat(style.paddingRight);
  const shown = (el) => el.getClientRects().length > 0;
  const short = (s, n = 80) => {
    s = s.replace(/\s+/g, " ").trim();
    return s.length > n ? s.slice(0, n - 1) + "…" : s;
  };
  const where = (el) => {
    const section = el.closest("section[id]");
    return section ? "#" + section.id : "";
  };

  // MathJax: did it run, and the TeX source of each typeset item, to name an equation.
  const mj = window.MathJax;
  const doc = mj && mj.startup && mj.startup.document;
  const tex = new Map();
  if (doc && doc.math) for (const item of doc.math) tex.set(item.typesetRoot, item.math);
  const hasMath = document.querySelector(".math, mjx-container") !== null;

  const mathErrors = [];
  if (hasMath && !(doc && doc.math)) mathErrors.push("MathJax did not run on this page");
  for (const container of article.querySelectorAll("mjx-container")) {
    const src = short(tex.get(container) || container.textContent);
    for (const err of container.querySelectorAll("mjx-merror"))
      mathErrors.push(`${err.getAttribute("data-mjx-error") || "error"} in ${src}`);
    for (const t of container.querySelectorAll("mjx-assistive-mml mtext")) {
      if (t.getAttribute("mathcolor") === "red")
        mathErrors.push(`undefined macro ${t.textContent} in ${src}`);
      else if (t.textContent.includes("\\"))
        mathErrors.push(`literal backslash "${short(t.textContent, 40)}" in ${src}`);
    }
  }

  // TeX left in the article's prose (code, and MathJax's own output, excluded).
  const skip = "script, style, pre, code, textarea, kbd, samp, mjx-container, .highlight";
  const texLeft = /\$\$?|\\[()[\]]|\\[A-Za-z]+/;
  const untypeset = [];
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const m = texLeft.exec(node.data);
    if (!m || node.parentElement.closest(skip)) continue;
    const around = node.data.slice(Math.max(0, m.index - 30), m.index + 50);
    untypeset.push({ text: short(around), where: where(node.parentElement) });
  }

  const wideEquations = [];
  for (const container of article.querySelectorAll("mjx-container[display=true]")) {
    const math = container.querySelector("mjx-math");
    if (!math || !shown(container)) continue;
    const r = math.getBoundingClientRect();
    const room = Math.min(container.clientWidth, columnWidth);
    if (r.width > room + 1 || r.right > columnRight + 1 || container.scrollWidth >
        container.clientWidth + 1)
      wideEquations.push({ width: Math.round(r.width), room: Math.round(room),
        tex: short(tex.get(container) || container.textContent), where: where(container) });
  }

  const clippedCode = [];
  for (const pre of article.querySelectorAll("pre")) {
    if (!shown(pre)) continue;
    const r = pre.getBoundingClientRect();
    if (pre.scrollWidth > pre.clientWidth + 1 || r.right > columnRight + 1) {
      const lines = pre.textContent.split("\n");
      clippedCode.push({ scroll: pre.scrollWidth, client: pre.clientWidth,
        longest: Math.max(...lines.map((l) => l.length)),
        output: pre.closest(".cell_output, .output") !== null,
        first: short(lines.find((l) => l.trim()) || "", 60), where: where(pre) });
    }
  }

  // An image is broken when the browser cannot decode it (a 404, a damaged file).
  const decodes = (img) => Promise.race([img.decode().then(() => true, () => false),
    new Promise((r) => setTimeout(() => r(img.complete && img.naturalWidth > 0), 5000))]);
  const loaded = await Promise.all([...document.images].map(decodes));
  const images = [...document.images].map((img, i) => ({
    src: img.getAttribute("src") || "", loaded: loaded[i], natural: img.naturalWidth,
    width: img.getBoundingClientRect().width, figure: article.contains(img) && shown(img),
    where: where(img),
  }));

  const ids = [...document.querySelectorAll("[id]")].map((e) => e.id)
    .concat([...document.querySelectorAll("a[name]")].map((e) => e.name));
  const links = [...document.querySelectorAll("a[href]")].map((a) => a.href);
  return { mathErrors, untypeset, wideEquations, clippedCode, images, ids, links,
           typeset: doc && doc.math ? Array.from(doc.math).length : 0 };
}
"""


def page_name(path: Path, site: Path) -> str:
    """``book/05_mamba_layer`` for ``<site>/book/05_mamba_layer.html``."""
    return path.relative_to(site).with_suffix("").as_posix()


def find_pages(site: Path) -> list[Path]:
    """Every HTML page of the site, outside Sphinx's asset folders."""
    assets = {"_static", "_sources", "_images", "_downloads"}
    return sorted(
        p for p in site.rglob("*.html") if not assets & set(p.relative_to(site).parts[:-1])
    )


def redirect_target(html: str) -> str | None:
    """The URL a ``<meta http-equiv="refresh">`` page sends the reader to, or None."""
    match = REFRESH.search(html[:2000])
    return match.group(1).strip() if match else None


def site_file(url: str, base: str, site: Path) -> Path | None:
    """The file in ``site`` that a URL on the local server ``base`` names; None for other hosts."""
    parts, here = urlsplit(url), urlsplit(base)
    if (parts.scheme, parts.netloc) != (here.scheme, here.netloc):
        return None
    path = unquote(parts.path).lstrip("/")
    if path == "" or path.endswith("/"):
        path += "index.html"
    return site / path


def check_links(reports: dict[str, PageReport], base: str, site: Path) -> list[Finding]:
    """Broken links (no such file) and anchors (no such id on the rendered target page)."""
    findings: list[Finding] = []
    for report in reports.values():
        seen: set[str] = set()
        for url in report.links:
            target = site_file(url, base, site)
            if target is None or url in seen:
                continue
            seen.add(url)
            shown = url.removeprefix(base)
            if not target.is_file():
                findings.append(Finding(report.page, "broken link", shown))
                continue
            fragment = unquote(urlsplit(url).fragment)
            if not fragment or target.suffix != ".html":
                continue
            name = page_name(target, site)
            if name in reports and fragment not in reports[name].ids:
                findings.append(Finding(report.page, "broken anchor", shown))
    return findings


def judge(page: str, measured: dict[str, Any]) -> PageReport:
    """Turn MEASURE_JS's data for one page into findings (everything but links and requests)."""
    report = PageReport(
        page, ids=set(measured["ids"]), links=measured["links"], typeset=measured["typeset"]
    )
    add = report.findings.append
    for message in measured["mathErrors"]:
        add(Finding(page, "math error", message))
    for item in measured["untypeset"]:
        add(Finding(page, "untypeset math", f'{item["where"]} "{item["text"]}"'.strip()))
    for eq in measured["wideEquations"]:
        detail = f"{eq['where']} {eq['width']} px of math in {eq['room']} px: {eq['tex']}"
        add(Finding(page, "wide equation", detail.strip()))
    for pre in measured["clippedCode"]:
        what = "output" if pre["output"] else "code"
        detail = (
            f"{pre['where']} {what} {pre['scroll']} px in a {pre['client']} px box, longest line "
            f'{pre["longest"]} characters: "{pre["first"]}"'
        )
        add(Finding(page, "clipped code block", detail.strip()))
    for img in measured["images"]:
        if not img["loaded"]:
            add(Finding(page, "broken image", img["src"]))
        if not img["figure"] or img["natural"] == 0:
            continue
        scale = img["width"] / img["natural"]
        report.figure_scales.append((scale, img["natural"], img["src"]))
        if img["natural"] > TINY_NATURAL_PX and scale < TINY_SCALE:
            detail = (
                f"{img['where']} {img['natural']} px shown at {img['width']:.0f} px "
                f"({scale:.0%}): {img['src']}"
            )
            add(Finding(page, "tiny figure", detail.strip()))
    return report


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on a free port of 127.0.0.1 in a thread; yields the base URL."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Watcher:
    """Records one page's console errors, uncaught exceptions and (blocked) external requests."""

    page: str
    base: str
    blocked: set[str]  # every URL blocked so far, to tell their console messages apart
    findings: list[Finding] = field(default_factory=list)

    def block(self, route: Any, request: Any) -> None:
        self.blocked.add(request.url)
        self.findings.append(Finding(self.page, "external request", request.url))
        route.abort("blockedbyclient")

    def console(self, message: Any) -> None:
        source = message.location.get("url", "")
        if message.type != "error":
            return
        if source in self.blocked and "Failed to load resource" in message.text:
            return  # the blocked request itself, already reported as an external request
        line = message.location.get("lineNumber")
        where = f" ({source.removeprefix(self.base)}:{line})" if source else ""
        self.findings.append(Finding(self.page, "console error", message.text + where))

    def page_error(self, error: Any) -> None:
        self.findings.append(Finding(self.page, "console error", f"uncaught {error}"))


def visit(
    browser: Any,
    base: str,
    path: Path,
    site: Path,
    shots: Path | None,
    timeout_s: float,
    blocked: set[str],
) -> PageReport:
    """Open one page in a fresh browser context (as a first-time visitor would), check it."""
    from playwright.sync_api import Error as PlaywrightError

    name = page_name(path, site)
    watch = Watcher(name, base, blocked)
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    try:
        context.route(lambda url: not url.startswith(base), watch.block)
        tab = context.new_page()
        tab.set_default_timeout(timeout_s * 1000)
        tab.on("console", watch.console)
        tab.on("pageerror", watch.page_error)
        tab.goto(base + path.relative_to(site).as_posix(), wait_until="load")
        tab.evaluate(SETTLE_JS, timeout_s * 1000 / 2)
        if shots is not None:
            shot = shots / f"{name}.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(shot), full_page=True)
        tab.evaluate(OPEN_JS)
        report = judge(name, tab.evaluate(MEASURE_JS))
    except PlaywrightError as error:  # the page did not load or hung: say so, check the others
        first_line = str(error).splitlines()[0]
        report = PageReport(
            name, [Finding(name, "console error", f"page not checked: {first_line}")]
        )
    finally:
        context.close()
    report.findings[:0] = watch.findings
    return report


def visit_all(
    site: Path, pages: list[Path], chromium: str, shots: Path | None, timeout_s: float
) -> tuple[dict[str, PageReport], list[Finding]]:
    """Open each page in one headless Chromium; returns the page reports and the link findings."""
    from playwright.sync_api import sync_playwright  # imported here: the helpers need no browser

    reports: dict[str, PageReport] = {}
    blocked: set[str] = set()  # every URL blocked so far
    with serve(site) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        for path in pages:
            name = page_name(path, site)
            target = redirect_target(path.read_text(errors="replace"))
            if target is None:
                reports[name] = visit(browser, base, path, site, shots, timeout_s, blocked)
            else:  # a redirect: its target is checked as a link, the page is not opened
                reports[name] = PageReport(name, links=[base + target])
        browser.close()
        return reports, check_links(reports, base, site)


def summarize(findings: list[Finding], reports: dict[str, PageReport]) -> dict[str, Any]:
    """Counts per kind (every kind, zeros included), per page, and the smallest figure scale."""
    per_kind = Counter(f.kind for f in findings)
    per_page: dict[str, Counter[str]] = {}
    for f in findings:
        per_page.setdefault(f.page, Counter())[f.kind] += 1
    scales = [(s, px, src, r.page) for r in reports.values() for s, px, src in r.figure_scales]
    smallest = None
    if scales:
        scale, natural, src, page = min(scales)
        smallest = {"scale": round(scale, 3), "natural_px": natural, "src": src, "page": page}
    return {
        "pages": len(reports),
        "counts": {kind: per_kind.get(kind, 0) for kind in KINDS},
        "per_page": {page: dict(c) for page, c in sorted(per_page.items())},
        "formulas_typeset": sum(r.typeset for r in reports.values()),
        "figures": len(scales),
        "smallest_figure_scale": smallest,
    }


def print_report(findings: list[Finding], summary: dict[str, Any]) -> None:
    """Every finding under its page, then the counts per kind and the information lines."""
    for page in sorted({f.page for f in findings}):
        print(f"\n{page}")
        for f in findings:
            if f.page == page:
                print(f"  {f.kind}: {f.detail}")
    print(f"\nSummary ({summary['pages']} pages, {WIDTH} px window):")
    for kind, n in summary["counts"].items():
        print(f"  {kind:<20} {n}")
    print(f"  (information) MathJax typeset {summary['formulas_typeset']} formulas")
    small = summary["smallest_figure_scale"]
    if small:
        print(
            f"  (information) {summary['figures']} figures; smallest shown at {small['scale']:.0%}"
            f" of its {small['natural_px']} px: {small['page']} {small['src']}"
        )


def default_chromium() -> str:
    """$CHROMIUM, else the ``chromium`` on PATH, else Debian's path."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots")
    parser.add_argument("--no-screenshots", action="store_true")
    parser.add_argument("--chromium", default=default_chromium(), help="the browser to drive")
    parser.add_argument("--json", type=Path, help="also write the findings and counts here")
    parser.add_argument("--timeout", type=float, default=30, help="seconds per page at most")
    parser.add_argument("pages", nargs="*", help="only these pages (e.g. book/intro)")
    args = parser.parse_args(argv)

    site = args.site.resolve()
    if not (site / "index.html").is_file():
        print(f"No built site in {site}: run `python3 dev.py book` first.", file=sys.stderr)
        return 2
    if not Path(args.chromium).is_file():
        print(f"No Chromium at {args.chromium} (apt-get install chromium).", file=sys.stderr)
        return 2
    pages = find_pages(site)
    if args.pages:
        pages = [p for p in pages if page_name(p, site) in args.pages]
    shots = None if args.no_screenshots else args.screenshots.resolve()

    start = time.monotonic()
    reports, link_findings = visit_all(site, pages, args.chromium, shots, args.timeout)
    findings = [f for r in reports.values() for f in r.findings] + link_findings
    summary = summarize(findings, reports)
    print_report(findings, summary)
    print(f"\n{len(pages)} pages in {time.monotonic() - start:.0f} s", end="")
    print(f"; screenshots in {shots}" if shots else "")
    if args.json:
        args.json.write_text(
            json.dumps(summary | {"findings": [asdict(f) for f in findings]}, indent=1)
        )
    print("FAILED" if findings else "OK: no findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
