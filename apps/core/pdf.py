"""PDF building blocks (ReportLab) with Chinese text that extracts correctly.

The CJK font is WenQuanYi Micro Hei, committed under ``static/fonts/`` (see its README for the
licence); ReportLab embeds the subset of glyphs each document uses, with a ToUnicode map, so every
viewer shows the Chinese text and "·" without a font of its own, and text extraction finds it.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

CJK_FONT = "WenQuanYiMicroHei"
CJK_FONT_FILE = Path(__file__).resolve().parents[2] / "static" / "fonts" / "wqy-microhei.ttc"


@cache
def _register_font() -> None:
    """Parse the font once, on the first PDF (not at import: the file is 5 MB)."""
    pdfmetrics.registerFont(TTFont(CJK_FONT, str(CJK_FONT_FILE), subfontIndex=0))


TITLE = ParagraphStyle("title", fontName=CJK_FONT, fontSize=16, leading=20, spaceAfter=6)
BODY = ParagraphStyle("body", fontName=CJK_FONT, fontSize=9, leading=12)
SMALL = ParagraphStyle("small", fontName=CJK_FONT, fontSize=7.5, leading=10)


def para(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    _register_font()
    return Paragraph(str(text).replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br/>"), style)


def table(rows: list[list], col_widths: list[float] | None = None, header: bool = True) -> Table:
    cells = [[c if isinstance(c, Paragraph) else para(c, SMALL) for c in row] for row in rows]
    t = Table(cells, colWidths=col_widths, repeatRows=1 if header else 0)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("FONTNAME", (0, 0), (-1, -1), CJK_FONT),  # the cells' default is a bare Helvetica
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")))
    t.setStyle(TableStyle(style))
    return t


def build(story: list, *, title: str) -> bytes:
    _register_font()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=title,
        author="Suanli",
        # the canvas's initial font is the embedded one too, else every page lists a bare Helvetica
        initialFontName=CJK_FONT,
    )
    doc.build(story)
    return buffer.getvalue()


def spacer(height_mm: float = 4) -> Spacer:
    return Spacer(1, height_mm * mm)
