"""Server-rendered SVG bar charts: geometry computed here, drawn by
templates/admin/reports/bar_chart.html (no JavaScript, nothing fetched at run time)."""

from __future__ import annotations

from decimal import Decimal

WIDTH = 760
HEIGHT = 260
TOP = 20
BOTTOM = 40  # room for the labels under the bars
LEFT = 10


def bar_chart(items: list[tuple[str, Decimal, str]], *, title: str) -> dict:
    """``items`` as (label, value, value as shown) → the bars' rectangles, scaled to the largest value."""
    plot_height = HEIGHT - TOP - BOTTOM
    largest = max((value for _, value, _ in items), default=Decimal(0))
    slot = (WIDTH - LEFT * 2) / max(len(items), 1)
    bars = []
    for index, (label, value, text) in enumerate(items):
        height = float(value / largest) * plot_height if largest > 0 and value > 0 else 0.0
        x = LEFT + index * slot
        bars.append(
            {
                "x": round(x + slot * 0.15, 1),
                "y": round(TOP + plot_height - height, 1),
                "width": round(slot * 0.7, 1),
                "height": round(height, 1),
                "label": label,
                "label_x": round(x + slot / 2, 1),
                "value": text,
                "value_y": round(TOP + plot_height - height - 4, 1),
            }
        )
    return {
        "title": title,
        "width": WIDTH,
        "height": HEIGHT,
        "baseline": TOP + plot_height,
        "label_y": HEIGHT - BOTTOM + 16,
        "bars": bars,
    }
