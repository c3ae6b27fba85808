"""PNG and PDF from the SVG the embedded Graphviz writes, with pip-installed wheels only.

* PNG: ``resvg-py`` (resvg, the Rust SVG renderer), pixels = points × dpi / 72.
* PDF: ``typst`` (its svg2pdf, built on the same usvg as resvg): vector, text kept as text.

Both are given gradviz's own font file (DejaVu Sans, in ``fonts/``) and no system
fonts. The DOT names the same font (:data:`gradviz.render.dot.FONT`), and
Graphviz sizes each box with its built-in DejaVu Sans width table, which is that
font's own advance widths: so the text drawn is the text measured, and it fits
its box on every machine, whatever fonts it has.

An SVG carries the same font for browsers: :func:`embed_font` adds the glyphs
it uses as an ``@font-face`` (a WOFF subset), so a browser without DejaVu Sans
(macOS, Windows) draws the text Graphviz measured. Text within :data:`COMMON_CHARS`
(printable ASCII and the symbols gradviz writes) takes the subset shipped in
``fonts/`` (11 kB, no fontTools at run time: it cost a quarter of a second per
picture); other text gets a subset made with fontTools for its own characters.

The libraries are imported lazily; a missing one is a :class:`RenderError`
naming the package to install.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from gradviz.errors import RenderError

__all__ = ["FONT_FAMILY", "FONT_FILE", "BACKGROUNDS", "DEFAULT_SCALE", "MAX_PIXELS",
           "embed_font", "png_from_svg", "pdf_from_svg", "set_background", "svg_size_pt"]

FONT_FAMILY = "DejaVu Sans"
FONT_FILE = Path(__file__).resolve().parent / "fonts" / "DejaVuSans.ttf"
#: the characters of the shipped subset: printable ASCII, the symbols gradviz's views write,
#: and a few a label may well hold (superscripts, Greek letters, operators)
COMMON_CHARS = "".join(map(chr, range(0x20, 0x7F))) + (
    "±²³·×πᵀ—…←→∂≈≤⋯─▶✓✗¹⁰⁴⁵⁶⁷⁸⁹⁻√∑∞≥≠−∇∈′°αβγδεθλμσφωΔΣ")
#: the WOFF of :data:`FONT_FILE`'s glyphs for :data:`COMMON_CHARS` (``write_common_font`` makes it)
COMMON_FONT_FILE = FONT_FILE.parent / "DejaVuSans-common.woff"
BACKGROUNDS = ("white", "transparent")
#: PNG pixels per CSS pixel (1 CSS px = 1/96 in): 2 is sharp on slides and high-DPI screens
DEFAULT_SCALE = 2.0
#: the largest PNG drawn (RGBA in memory: 4 bytes a pixel)
MAX_PIXELS = 64_000_000


def png_from_svg(svg: bytes, scale: float | None = None, dpi: float | None = None,
                 background: str = "white") -> bytes:
    """The PNG of ``svg`` at ``dpi`` (or ``scale`` × 96 dpi; default scale 2)."""
    dpi = png_dpi(scale, dpi)
    svg = set_background(svg, background)
    width_pt, height_pt = svg_size_pt(svg)
    width_px, height_px = round(width_pt * dpi / 72), round(height_pt * dpi / 72)
    if width_px * height_px > MAX_PIXELS:
        raise RenderError(
            f"the PNG would be {width_px:,}×{height_px:,} pixels (more than {MAX_PIXELS:,}): "
            f"lower --scale or --dpi, draw fewer nodes (--max-nodes), or write SVG or PDF"
        )
    resvg_py = _require("resvg_py", "resvg-py", "PNG")
    try:
        png = resvg_py.svg_to_bytes(
            svg_string=_text(svg), dpi=float(dpi), skip_system_fonts=True,
            font_files=[str(FONT_FILE)], font_family=FONT_FAMILY, sans_serif_family=FONT_FAMILY,
        )
    except Exception as exc:  # resvg raises ValueError / RuntimeError with its own words
        raise RenderError(f"could not draw the PNG: {_first_line(str(exc))}") from exc
    return bytes(png)


# The SVG goes in as a string input, never as Typst markup: nothing of it is evaluated.
_TYPST_PAGE = (
    b'#set document(date: none)\n'
    b'#set page(width: auto, height: auto, margin: 0pt, fill: none)\n'
    b'#image(bytes(sys.inputs.svg), format: "svg")\n'
)


def pdf_from_svg(svg: bytes, background: str = "white") -> bytes:
    """A one-page vector PDF of ``svg``, the page the drawing's size in points."""
    svg = set_background(svg, background)
    svg_size_pt(svg)  # a clear error for a document that is not one of Graphviz's SVGs
    typst = _require("typst", "typst", "PDF")
    import tempfile

    try:
        # An empty root folder: the document can read no file (and there are none to read).
        with tempfile.TemporaryDirectory(prefix="gradviz-pdf-") as root:
            pdf = typst.compile(
                _TYPST_PAGE, root=root, font_paths=[str(FONT_FILE.parent)], ignore_system_fonts=True,
                sys_inputs={"svg": _text(svg)}, timestamp=_epoch(), format="pdf",
            )
    except Exception as exc:
        raise RenderError(f"could not write the PDF: {_first_line(str(exc))}") from exc
    return bytes(pdf)


_TEXT = re.compile(rb"<text\b[^>]*>([^<]*)</text>")
_SVG_OPEN = re.compile(rb"<svg\b[^>]*>")


def embed_font(svg: bytes) -> bytes:
    """``svg`` with an ``@font-face`` holding the glyphs of :data:`FONT_FAMILY` that its text uses."""
    if f'font-family="{FONT_FAMILY}"'.encode() not in svg or b"@font-face" in svg:
        return svg
    import html

    chars = set()
    for match in _TEXT.finditer(svg):
        chars.update(html.unescape(match.group(1).decode("utf-8", errors="replace")))
    opening = _SVG_OPEN.search(svg)
    if not chars or opening is None:
        return svg
    font = _common_font() if chars <= _COMMON else _woff_subset("".join(sorted(chars)))
    style = (b'\n<defs><style type="text/css">@font-face { font-family: "' + FONT_FAMILY.encode() +
             b'"; src: url(data:font/woff;base64,' + font +
             b') format("woff"); }</style></defs>')
    return svg[: opening.end()] + style + svg[opening.end():]


_COMMON = frozenset(COMMON_CHARS)


@functools.lru_cache(maxsize=1)
def _common_font() -> bytes:
    """Base64 of the shipped WOFF for :data:`COMMON_CHARS`."""
    import base64

    return base64.b64encode(COMMON_FONT_FILE.read_bytes())


@functools.lru_cache(maxsize=64)
def _woff_subset(chars: str) -> bytes:
    """Base64 of a WOFF holding the shipped font's glyphs for ``chars``."""
    import base64

    return base64.b64encode(woff(chars))


def write_common_font() -> None:
    """Make :data:`COMMON_FONT_FILE` again (after changing :data:`COMMON_CHARS` or the font):
    ``python -c "from gradviz.render.raster import write_common_font; write_common_font()"``."""
    COMMON_FONT_FILE.write_bytes(woff(COMMON_CHARS))


def woff(chars: str) -> bytes:
    """A WOFF holding the shipped font's glyphs for ``chars``.

    Without kerning (no GPOS): a browser then advances exactly by the glyph widths,
    which is what Graphviz's width table adds up.
    """
    import io

    subset = _require("fontTools.subset", "fonttools", "SVG with its font embedded")
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = []
    options.hinting = False
    options.notdef_outline = True
    options.drop_tables += ["FFTM", "GSUB", "GPOS", "GDEF"]  # FFTM: FontForge's timestamps
    # lazy: only the glyphs asked for are parsed; no timestamp: same SVG bytes for the same graph
    font = TTFont(str(FONT_FILE), lazy=True, recalcTimestamp=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=chars)
    subsetter.subset(font)
    out = io.BytesIO()
    font.flavor = "woff"
    font.save(out)
    return out.getvalue()


# Graphviz paints the page first: the graph's title, then one polygon filled with bgcolor.
_PAGE = re.compile(rb'(<g id="graph0" class="graph"[^>]*>\s*(?:<title>[^<]*</title>\s*)?<polygon fill=")([^"]*)(")')


def set_background(svg: bytes, background: str) -> bytes:
    """``svg`` with its page background white or transparent (Graphviz's page polygon)."""
    if background not in BACKGROUNDS:
        raise RenderError(f"unknown background {background!r}: expected one of {', '.join(BACKGROUNDS)}")
    fill = b"white" if background == "white" else b"none"
    return _PAGE.sub(lambda m: m.group(1) + fill + m.group(3), svg, count=1)


_SIZE = re.compile(rb'<svg\s[^>]*?width="([0-9.]+)pt"[^>]*?height="([0-9.]+)pt"')


def svg_size_pt(svg: bytes) -> tuple[float, float]:
    """(width, height) in points of a Graphviz SVG (its ``<svg width="..pt" height="..pt">``)."""
    match = _SIZE.search(svg[:4096])
    if not match:
        raise RenderError("the SVG has no size in points: is it one Graphviz wrote?")
    return float(match.group(1)), float(match.group(2))


def png_dpi(scale: float | None, dpi: float | None) -> float:
    if scale is not None and dpi is not None:
        raise RenderError("give the PNG's size as --scale or as --dpi, not both")
    if dpi is None:
        dpi = 96 * (DEFAULT_SCALE if scale is None else scale)
    if not (1 <= dpi <= 2400):
        raise RenderError(f"the PNG resolution must be between 1 and 2400 dpi (scale 0.01 to 25), not {dpi:g}")
    return float(dpi)


def _require(module: str, package: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise RenderError(
            f"{what} output needs the '{package}' package, which is not installed: pip install {package} "
            f"(or use --renderer system with Graphviz installed)"
        ) from None


def _epoch() -> int:
    try:
        return max(0, int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    except ValueError:
        return 0


def _text(svg: bytes) -> str:
    try:
        return svg.decode("utf-8")
    except UnicodeDecodeError:
        raise RenderError("the SVG is not UTF-8 text") from None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")
