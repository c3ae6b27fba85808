"""PNG and PDF with pip alone (gradviz.render.raster), and text that fits its box in every output.

The fit check measures every label of every sample with the font gradviz ships
(fontTools: the sum of the glyphs' advance widths, what resvg and svg2pdf lay
out before kerning) and compares it with the box Graphviz drew around it: the
record field (between the node's separators) for node text, the page for edge
labels and the legend. Graphviz sized the boxes with its DejaVu Sans width
table, so for ASCII the two agree exactly; the margins cover the rest.
"""

from __future__ import annotations

import importlib.util
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradviz.cli import main
from gradviz.errors import RenderError
from gradviz.render import raster
from gradviz.render.dot import FONT
from gradviz.render.svg import render

REPO = Path(__file__).resolve().parents[1]
NS = "{http://www.w3.org/2000/svg}"
SIMPLE = 'digraph { node [fontname="DejaVu Sans"] a -> b [label="g = 2"] }'


def _samples() -> list[tuple[str, list[str]]]:
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "samples" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [(name, args) for name, _title, _about, args in module.SAMPLES]


SAMPLES = _samples()
# Beyond the samples: the collapsed view's "⋯" and "←" (non-ASCII, which Graphviz
# underestimates), long saved values, and a two-layer network.
EXTRA = [
    ("collapsed", ["sum(" + " + ".join(f"sin(x*{i})" for i in range(1, 40)) + ")", "--at", "x=0.5",
                   "--max-nodes", "30"]),
    ("mlp", ["mean(tanh(W2 @ tanh(W1 @ x + b1) + b2))", "--at",
             "W1=[[0.1,-0.2,0.3],[0.4,0.5,-0.6],[0.7,-0.8,0.9],[-0.1,0.2,-0.3]],x=[1,2,3],"
             "b1=[0.1,-0.1,0.2,-0.2],W2=[[0.5,-0.5,0.25,-0.25],[1,2,3,4]],b2=[0.01,-0.01]"]),
]
CASES = [(name, args, rankdir) for name, args in SAMPLES + EXTRA for rankdir in ("LR", "TB")]


@pytest.fixture(autouse=True)
def _cache(gradviz_cache_dir):
    """Renders use the session's temporary wasm cache."""


def run(args):
    result = CliRunner().invoke(main, args, env={"NO_COLOR": "1"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


@pytest.fixture(scope="module")
def font():
    fontTools = pytest.importorskip("fontTools.ttLib")
    return fontTools.TTFont(str(raster.FONT_FILE))


def text_width(font, text: str, size: float) -> float:
    cmap = font.getBestCmap()
    hmtx = font["hmtx"]
    notdef = hmtx[".notdef"][0]
    units = sum(hmtx[cmap[ord(ch)]][0] if ord(ch) in cmap else notdef for ch in text)
    return units * size / font["head"].unitsPerEm


def _points(el) -> list[tuple[float, float]]:
    if el.tag == NS + "path":
        nums = [float(n) for n in re.findall(r"-?[0-9.]+(?:e-?[0-9]+)?", el.get("d"))]
    else:
        nums = [float(n) for n in re.findall(r"-?[0-9.]+", el.get("points"))]
    return list(zip(nums[::2], nums[1::2]))


def overflows(svg: bytes, font) -> list[str]:
    """Every text of ``svg`` that reaches past its box, described."""
    root = ET.fromstring(svg)
    graph = root.find(NS + "g")
    page = _points(graph.find(NS + "polygon"))
    page_box = (min(x for x, _ in page), max(x for x, _ in page))
    problems = []

    def extent(text_el):
        size = float(text_el.get("font-size"))
        x = float(text_el.get("x"))
        width = text_width(font, text_el.text or "", size)
        anchor = text_el.get("text-anchor", "start")
        start = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
        return start, start + width, float(text_el.get("y"))

    for group in graph.iter(NS + "g"):
        cls = group.get("class")
        texts = group.findall(NS + "text")
        if cls == "node":
            outline = [el for el in group if el.tag in (NS + "path", NS + "polygon")]
            if not outline:
                continue
            pts = _points(outline[0])
            left, right = min(x for x, _ in pts), max(x for x, _ in pts)
            # Record fields: vertical separators split the box side by side (LR), horizontal
            # ones stack the fields (TB, and the lines within a field need no split).
            seps = []
            for line in group.findall(NS + "polyline"):
                (x1, y1), (x2, y2) = _points(line)[:2]
                if abs(x1 - x2) < 0.01:
                    seps.append((x1, min(y1, y2), max(y1, y2)))
            for t in texts:
                x0, x1, y = extent(t)
                anchor_x = (x0 + x1) / 2
                lo = max([s[0] for s in seps if s[0] <= anchor_x and s[1] <= y <= s[2]], default=left)
                hi = min([s[0] for s in seps if s[0] > anchor_x and s[1] <= y <= s[2]], default=right)
                if x0 < lo + 0.5 or x1 > hi - 0.5:
                    problems.append(f"node text {t.text!r}: {x0:.1f}..{x1:.1f} outside its box {lo:.1f}..{hi:.1f}")
        elif cls in ("edge", "graph"):
            for t in texts:
                x0, x1, _ = extent(t)
                if x0 < page_box[0] or x1 > page_box[1]:
                    problems.append(f"{cls} text {t.text!r}: {x0:.1f}..{x1:.1f} outside the page "
                                    f"{page_box[0]:.1f}..{page_box[1]:.1f}")
    return problems


# --------------------------------------------------------------------------- text fits its box


@pytest.mark.parametrize("name,args,rankdir", CASES, ids=[f"{n}-{r}" for n, _, r in CASES])
def test_every_label_fits_its_box(name, args, rankdir, font, tmp_path):
    svg = run([*args, "--rankdir", rankdir, "--format", "svg", "-o", "-"])
    families = set(re.findall(rb'font-family="([^"]*)"', svg))
    assert families == {FONT.encode()}, families  # the font Graphviz measured is the one drawn
    assert overflows(svg, font) == []
    # ...and the PNG is drawn from that same SVG, at the asked scale.
    png = run([*args, "--rankdir", rankdir, "--format", "png", "-o", "-", "--scale", "1"])
    width_pt, height_pt = raster.svg_size_pt(svg)
    assert png_size(png) == (round(width_pt * 96 / 72), round(height_pt * 96 / 72))


def test_the_check_finds_an_overflow(font):
    # The check itself: sized with DejaVu Sans it fits; sized with Helvetica's narrower
    # table and drawn in DejaVu Sans (what a converter does with today's samples) it does not.
    label = 'a [label="AccumulateGrad|grad = [[0.1109, 0.2217]]"]'
    fits = render('digraph { node [shape=Mrecord, fontname="DejaVu Sans", margin=0.05] ' + label + " }", "svg")
    assert overflows(fits, font) == []
    squeezed = render('digraph { node [shape=Mrecord, fontname="Helvetica", margin=0.05] ' + label + " }", "svg")
    found = overflows(squeezed.replace(b"Helvetica", b"DejaVu Sans"), font)
    assert len(found) == 2 and "AccumulateGrad" in found[0]


# --------------------------------------------------------------------------- PNG


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", png[16:24])


def png_color_type(png: bytes) -> int:
    return png[25]


def test_png_scale_and_dpi():
    svg = render(SIMPLE, "svg")
    w, h = raster.svg_size_pt(svg)
    assert png_size(raster.png_from_svg(svg)) == (round(w * 192 / 72), round(h * 192 / 72))  # default scale 2
    assert png_size(raster.png_from_svg(svg, scale=1)) == (round(w * 96 / 72), round(h * 96 / 72))
    assert png_size(raster.png_from_svg(svg, dpi=300)) == (round(w * 300 / 72), round(h * 300 / 72))
    with pytest.raises(RenderError, match="not both"):
        raster.png_from_svg(svg, scale=1, dpi=300)
    with pytest.raises(RenderError, match="dpi"):
        raster.png_from_svg(svg, dpi=0.5)


def test_png_is_deterministic():
    assert render(SIMPLE, "png") == render(SIMPLE, "png")


def test_png_background_white_or_transparent():
    svg = render(SIMPLE, "svg")
    assert b'<polygon fill="white"' in svg
    clear = raster.set_background(svg, "transparent")
    assert b'<polygon fill="none"' in clear and clear.count(b'fill="none"') == svg.count(b'fill="none"') + 1
    white = render(SIMPLE, "png")
    transparent = render(SIMPLE, "png", background="transparent")
    assert white != transparent and png_color_type(transparent) == 6  # RGBA
    with pytest.raises(RenderError, match="background"):
        render(SIMPLE, "png", background="blue")


def test_too_many_pixels_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(raster, "MAX_PIXELS", 1000)
    with pytest.raises(RenderError, match=r"pixels .*--scale"):
        render(SIMPLE, "png")


def test_missing_package_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "resvg_py", None)
    with pytest.raises(RenderError, match=r"PNG output needs the 'resvg-py' package.*pip install resvg-py"):
        render(SIMPLE, "png")
    monkeypatch.setitem(sys.modules, "typst", None)
    with pytest.raises(RenderError, match=r"pip install typst"):
        render(SIMPLE, "pdf")


def test_import_is_cheap():
    import subprocess
    import sys

    code = ("import sys, gradviz.render.raster, gradviz.render.svg\n"
            "bad = [m for m in ('resvg_py', 'typst', 'wasmtime') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# --------------------------------------------------------------------------- PDF


def test_pdf_is_vector_with_the_shipped_font_and_deterministic(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    svg = render(SIMPLE, "svg")
    pdf = raster.pdf_from_svg(svg)
    assert pdf.startswith(b"%PDF")
    assert re.search(rb"/BaseFont\s*/[A-Z]{6}\+DejaVuSans", pdf)  # text as text, in our font
    w, h = raster.svg_size_pt(svg)
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)", pdf)
    assert (float(box.group(1)), float(box.group(2))) == pytest.approx((w, h), abs=1)
    assert raster.pdf_from_svg(svg) == pdf


# --------------------------------------------------------------------------- CLI


def test_cli_png_pdf_options(tmp_path):
    uv = ["u*v + u**2", "--at", "u=1,v=2"]
    run([*uv, "-o", str(tmp_path / "a.png"), "--dpi", "144", "--background", "transparent"])
    png = (tmp_path / "a.png").read_bytes()
    assert png_color_type(png) == 6
    run([*uv, "-o", str(tmp_path / "a.pdf")])
    assert (tmp_path / "a.pdf").read_bytes().startswith(b"%PDF")
    for bad, message in [(["-o", str(tmp_path / "b.pdf"), "--scale", "2"], "--scale sizes a PNG"),
                         (["--format", "svg", "-o", "-", "--dpi", "90"], "--dpi sizes a PNG"),
                         (["--json", "--background", "white"], "--background paints a picture"),
                         (["-o", str(tmp_path / "b.png"), "--scale", "2", "--dpi", "90"], "not both")]:
        result = CliRunner().invoke(main, [*uv, *bad], catch_exceptions=False)
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert not (tmp_path / "b.pdf").exists() and not (tmp_path / "b.png").exists()


# --------------------------------------------------------------------------- SVG for browsers


def test_svg_embeds_the_glyphs_it_uses(font):
    import base64
    import html
    import io

    from fontTools.ttLib import TTFont

    svg = run(["sigmoid(w*x + b)", "--at", "w=0.5,x=2,b=-1", "--format", "svg", "-o", "-"])
    match = re.search(rb'@font-face \{ font-family: "DejaVu Sans"; src: url\(data:font/woff;base64,([A-Za-z0-9+/=]+)\)',
                      svg)
    assert match, svg[:600]
    woff = TTFont(io.BytesIO(base64.b64decode(match.group(1))))
    chars = {ch for text in re.findall(rb"<text\b[^>]*>([^<]*)</text>", svg) for ch in html.unescape(text.decode())}
    covered = {chr(code) for code in woff.getBestCmap()}
    assert chars and chars <= covered, chars - covered
    assert woff["name"].getDebugName(1) == FONT
    for ch in chars:  # the subset's advance widths are the shipped font's
        assert woff["hmtx"][woff.getBestCmap()[ord(ch)]][0] == font["hmtx"][font.getBestCmap()[ord(ch)]][0]
    assert len(match.group(1)) < 40_000
    assert raster.embed_font(svg) == svg  # once only
    raster._woff_subset.cache_clear()
    assert run(["sigmoid(w*x + b)", "--at", "w=0.5,x=2,b=-1", "--format", "svg", "-o", "-"]) == svg  # same bytes


def test_shipped_common_font_is_the_subset_of_its_characters():
    # the file in fonts/ is what write_common_font makes from the shipped font today
    assert raster.woff(raster.COMMON_CHARS) == raster.COMMON_FONT_FILE.read_bytes()


@pytest.mark.parametrize("text, common", [("f = 3 ∂f/∂u = 4 · x²", True), ("Жx = 1", False)])
def test_embed_font_takes_the_shipped_subset_only_for_its_characters(text, common):
    import base64
    import html
    import io

    from fontTools.ttLib import TTFont

    svg = ('<svg width="10pt" height="10pt"><text font-family="DejaVu Sans">%s</text></svg>'
           % html.escape(text)).encode()
    out = raster.embed_font(svg)
    data = base64.b64decode(re.search(rb"base64,([A-Za-z0-9+/=]+)\)", out).group(1))
    assert (data == raster.COMMON_FONT_FILE.read_bytes()) is common
    covered = {chr(code) for code in TTFont(io.BytesIO(data)).getBestCmap()}
    assert set(text) <= covered


def test_svg_background_transparent():
    svg = render(SIMPLE, "svg", background="transparent")
    assert b'<polygon fill="none" stroke="none"' in svg and b'<polygon fill="white"' not in svg
