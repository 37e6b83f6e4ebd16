"""PDF building blocks (ReportLab) with Chinese text that extracts correctly.

ReportLab's built-in CID font ``STSong-Light`` needs no font file, so every machine renders CJK.
"""

from __future__ import annotations

import io

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

CJK_FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))

TITLE = ParagraphStyle("title", fontName=CJK_FONT, fontSize=16, leading=20, spaceAfter=6)
BODY = ParagraphStyle("body", fontName=CJK_FONT, fontSize=9, leading=12)
SMALL = ParagraphStyle("small", fontName=CJK_FONT, fontSize=7.5, leading=10)


def para(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(str(text).replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br/>"), style)


def table(rows: list[list], col_widths: list[float] | None = None, header: bool = True) -> Table:
    cells = [[c if isinstance(c, Paragraph) else para(c, SMALL) for c in row] for row in rows]
    t = Table(cells, colWidths=col_widths, repeatRows=1 if header else 0)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")))
    t.setStyle(TableStyle(style))
    return t


def build(story: list, *, title: str) -> bytes:
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
    )
    doc.build(story)
    return buffer.getvalue()


def spacer(height_mm: float = 4) -> Spacer:
    return Spacer(1, height_mm * mm)
