"""Server-rendered SVG bar charts: geometry computed here, drawn by
templates/admin/reports/bar_chart.html (no JavaScript, nothing fetched at run time)."""

from __future__ import annotations

from decimal import Decimal

WIDTH = 760
PLOT_HEIGHT = 200
TOP = 20
BOTTOM = 40  # room for the labels under the bars
LEFT = 10
LABEL_CHAR = 6.0  # about how wide a character of the 10 px label font is
VALUE_CHAR = 5.4  # and of the 9 px value font
LONGEST_SLANTED = 120  # a slanted label is cut to this many pixels' worth of characters


def bar_chart(items: list[tuple[str, Decimal, str]], *, title: str) -> dict:
    """``items`` as (label, value, value as shown) → the bars' rectangles, scaled to the largest value.

    When the labels are wider than a bar's slot they are slanted (and long ones shortened, the
    whole label staying in the bar's tooltip); a value that does not fit above its bar is left to
    the tooltip, so neighbours never print over each other."""
    plot_height = PLOT_HEIGHT
    largest = max((value for _, value, _ in items), default=Decimal(0))
    slot = (WIDTH - LEFT * 2) / max(len(items), 1)
    longest = max((len(label) for label, _, _ in items), default=0)
    slanted = longest * LABEL_CHAR > slot * 0.95
    most_chars = int(LONGEST_SLANTED / LABEL_CHAR)
    bottom, left = BOTTOM, LEFT
    if slanted:  # at 40°: a label reaches down by sin 40° and left by cos 40° of its length
        reach = min(longest, most_chars) * LABEL_CHAR
        bottom = round(reach * 0.65) + 20
        left = max(LEFT, round(reach * 0.77 - slot / 2) + LEFT)
        slot = (WIDTH - left - LEFT) / max(len(items), 1)
    label_y = TOP + plot_height + 16
    bars = []
    for index, (label, value, text) in enumerate(items):
        height = float(value / largest) * plot_height if largest > 0 and value > 0 else 0.0
        x = left + index * slot
        shown = label if not slanted or len(label) <= most_chars else label[: most_chars - 1] + "…"
        bars.append(
            {
                "x": round(x + slot * 0.15, 1),
                "y": round(TOP + plot_height - height, 1),
                "width": round(slot * 0.7, 1),
                "height": round(height, 1),
                "label": label,
                "label_shown": shown,
                "label_x": round(x + slot / 2, 1),
                "value": text,
                "value_shown": len(text) * VALUE_CHAR <= slot,
                "value_y": round(TOP + plot_height - height - 4, 1),
            }
        )
    return {
        "title": title,
        "width": WIDTH,
        "height": TOP + plot_height + bottom,
        "baseline": TOP + plot_height,
        "label_y": label_y,
        "slanted": slanted,
        "bars": bars,
    }
