"""tools/check_site.py, the book's browser test: its rules, and each check on a tiny site.

The rules (links, anchors, redirects, figure thresholds) are plain Python and always tested. The
checks themselves run in headless Chromium on a two-page site made here with one example of each
problem; that test is skipped where Chromium, Playwright or the local MathJax
(sphinx-mathjax-offline) is missing.
"""

import importlib.util
import json
import shutil
import struct
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import check_site  # noqa: E402

BASE = "http://127.0.0.1:8000/"


def test_pages_redirects_and_files(tmp_path: Path) -> None:
    for name in ("index.html", "book/a.html", "_static/x.html", "_sources/book/a.html"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    pages = check_site.find_pages(tmp_path)
    assert [check_site.page_name(p, tmp_path) for p in pages] == ["book/a", "index"]
    assert check_site.redirect_target('<meta http-equiv="Refresh" content="0; url=book/a.html" />')
    assert check_site.redirect_target("<p>url=book/a.html</p>") is None
    assert (
        check_site.site_file(BASE + "book/a%20b.html#x", BASE, tmp_path)
        == tmp_path / "book/a b.html"
    )
    assert check_site.site_file(BASE, BASE, tmp_path) == tmp_path / "index.html"
    assert check_site.site_file("https://github.com/", BASE, tmp_path) is None
    assert check_site.site_file("http://127.0.0.1:9/a.html", BASE, tmp_path) is None


def test_links_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text("")
    (tmp_path / "b.png").write_bytes(b"")
    links = [
        BASE + "a.html#here",  # fine
        BASE + "a.html#caf%C3%A9",  # fine: the id is "café"
        BASE + "a.html#gone",  # no such id
        BASE + "a.html#gone",  # reported once per page
        BASE + "b.png#x",  # not a page: no anchor to check
        BASE + "missing.html",
        "https://example.com/missing.html",  # not ours: not checked
    ]
    reports = {"a": check_site.PageReport("a", ids={"here", "café"}, links=links)}
    found = check_site.check_links(reports, BASE, tmp_path)
    assert [(f.kind, f.detail) for f in found] == [
        ("broken anchor", "a.html#gone"),
        ("broken link", "missing.html"),
    ]


def measured(**images: tuple[int, float]) -> dict:
    """MEASURE_JS's answer for a page whose only content is figures: src -> (natural, shown)."""
    return {
        "ids": [],
        "links": [],
        "typeset": 0,
        "mathErrors": [],
        "untypeset": [],
        "wideEquations": [],
        "clippedCode": [],
        "images": [
            {"src": src, "loaded": natural > 0, "natural": natural, "width": width}
            | {"figure": True, "where": ""}
            for src, (natural, width) in images.items()
        ],
    }


def test_tiny_figures_only_when_large_and_shrunk() -> None:
    report = check_site.judge(
        "p",
        measured(
            big=(901, 540.0),  # 59.9% of a 901 px figure: tiny
            edge=(900, 300.0),  # 900 px is not "over 900"
            fine=(1000, 600.0),  # exactly 60%
            small=(400, 100.0),  # small figures may shrink: only reported as the smallest scale
            broken=(0, 0.0),
        ),
    )
    assert [(f.kind, f.detail.split(": ")[-1]) for f in report.findings] == [
        ("tiny figure", "big"),
        ("broken image", "broken"),
    ]
    summary = check_site.summarize(report.findings, {"p": report})
    assert summary["smallest_figure_scale"]["src"] == "small"
    assert summary["counts"]["tiny figure"] == 1
    assert set(summary["counts"]) == set(check_site.KINDS)


# --- every check in the browser, on a site with one example of each problem ---------------------


def png(width: int, height: int) -> bytes:
    """A white grey-scale PNG of the given size."""
    row = b"\x00" + b"\xff" * width
    chunk = lambda kind, data: (  # noqa: E731
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        (chunk(b"IHDR", header), chunk(b"IDAT", zlib.compress(row * height)), chunk(b"IEND", b""))
    )


HEAD = r"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title>
<script>window.MathJax = {options: {processHtmlClass: "math", ignoreHtmlClass: "document"}};
</script><script defer src="_static/mathjax/tex-chtml.js"></script>
<style>body {margin: 0} article {width: 600px; padding: 0 20px} pre {overflow: auto}</style>
</head><body class="document"><article class="bd-article">"""

BAD = (
    r"""<section id="one"><h1>Problems</h1>
<p>Fine: <span class="math">\(x^2\)</span>, <a href="#one">here</a>,
<a href="good.html#two">there</a>.
Not typeset: $$ y = 2 $$ and a stray \alpha.</p>
<div class="math">\[\texttt{attn\_layer}\]</div>
<div class="math">\[\nosuchmacro x\]</div>
<div class="math">\[x^^2\]</div>
<div class="math">\[a_1 + a_2 + a_3 + a_4 + a_5 + a_6 + a_7 + a_8 + a_9 + a_{10} + a_{11} + a_{12}
 + a_{13} + a_{14} + a_{15} + a_{16} + a_{17} + a_{18} + a_{19} + a_{20} + a_{21} + a_{22}
 + a_{23} + a_{24} + a_{25} + a_{26} + a_{27} + a_{28} + a_{29} + a_{30}\]</div>
<div class="highlight"><pre>short
"""
    + "x = 1  # "
    + "long " * 40
    + r"""</pre></div>
<details><summary>hidden</summary><pre>"""
    + "y" * 200
    + r"""</pre></details>
<pre>$ code is not checked for TeX: \alpha $$</pre>
<p><a href="missing.html">missing</a> <a href="good.html#nope">no such anchor</a></p>
<img src="wide.png" style="width: 500px"> <img src="narrow.png" style="width: 400px">
<img src="gone.png"> <img src="https://example.com/logo.png">
<script>console.error("boom")</script>
</section></article></body></html>"""
)

GOOD = r"""<section id="two"><h1>Fine</h1><p>Math: <span class="math">\(\frac{a}{b}\)</span>.</p>
<div class="math">\[\mathtt{attn\_layer\_period}\]</div><pre>print("fits")</pre>
<img src="narrow.png" style="width: 400px"><a href="bad.html#one">back</a></section>
</article></body></html>"""


def mathjax_folder() -> Path | None:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "static" / "mathjax"
    return folder if folder.is_dir() else None


def test_every_check_in_chromium(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chromium = check_site.default_chromium()
    mathjax = mathjax_folder()
    if importlib.util.find_spec("playwright") is None or shutil.which(chromium) is None:
        pytest.skip("needs Playwright and Chromium (apt-get install chromium)")
    if mathjax is None:
        pytest.skip("needs sphinx-mathjax-offline (the book extra)")
    site = tmp_path / "html"
    (site / "_static").mkdir(parents=True)
    (site / "_static" / "mathjax").symlink_to(mathjax)
    (site / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=good.html" />')
    (site / "bad.html").write_text(HEAD + BAD)
    (site / "good.html").write_text(HEAD + GOOD)
    (site / "wide.png").write_bytes(png(1200, 10))  # shown at 500 px: 42%
    (site / "narrow.png").write_bytes(png(400, 10))
    report = tmp_path / "report.json"
    shots = tmp_path / "shots"

    args = ["--site", str(site), "--screenshots", str(shots), "--json", str(report)]
    assert check_site.main(args) == 1
    out = capsys.readouterr().out
    result = json.loads(report.read_text())
    assert set(result["per_page"]) == {"bad"}, out
    assert result["formulas_typeset"] == 7, out
    counts = {kind: n for kind, n in result["counts"].items() if n}
    assert counts == {
        "console error": 2,  # console.error("boom") and gone.png's 404
        "external request": 1,  # example.com's logo (blocked)
        "math error": 3,  # \texttt{attn\_layer}, \nosuchmacro, x^^2 (double exponent)
        "untypeset math": 1,  # one text node: $$ y = 2 $$ and \alpha
        "wide equation": 1,
        "clipped code block": 2,  # the long line, and the one in a closed <details>
        "broken link": 1,
        "broken anchor": 1,
        "broken image": 2,  # gone.png, and the blocked logo
        "tiny figure": 1,  # wide.png
    }, out
    assert {p.name for p in shots.iterdir()} == {"bad.png", "good.png"}
