"""Server-rendered bar charts: the geometry of an inline SVG, computed here, drawn by a template.

No JavaScript and nothing fetched: the template draws ``rect`` and ``text`` elements at the
coordinates below (docs/portal.md#dashboard).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.utils import formats

from apps.portal.selectors import DailyCardHours

WIDTH, HEIGHT = 900, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 36
# Colour-blind-safe palette (Okabe–Ito), one colour per GPU model.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LegendItem:
    label: str
    colour: str
    total: Decimal


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    legend: list[LegendItem]

    @property
    def empty(self) -> bool:
        return not self.bars


def _nice_step(maximum: Decimal, ticks: int = 4) -> Decimal:
    raw = maximum / ticks
    magnitude = Decimal(10) ** (len(str(int(raw))) - 1) if raw >= 1 else Decimal(1)
    for factor in (1, 2, 5, 10):
        if raw <= magnitude * factor:
            return magnitude * factor
    return magnitude * 10


def _short_date(day: datetime.date) -> str:
    return formats.date_format(day, "MONTH_DAY_FORMAT")


def stacked_daily_chart(data: DailyCardHours) -> BarChart:
    """Card-hours per day, one stacked bar a day, one colour per GPU model."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    totals = {
        day: sum((data.hours.get((day, m), Decimal(0)) for m in data.models), Decimal(0)) for day in data.days
    }
    top = max(totals.values(), default=Decimal(0))
    step = _nice_step(top) if top > 0 else Decimal(1)
    scale_max = step * 4
    slot = plot_width / max(len(data.days), 1)
    colours = {model: PALETTE[i % len(PALETTE)] for i, model in enumerate(data.models)}

    bars = []
    for index, day in enumerate(data.days):
        base = Decimal(0)
        for model in data.models:
            value = data.hours.get((day, model))
            if not value:
                continue
            height = float(value / scale_max) * plot_height
            y = TOP + plot_height - float(base / scale_max) * plot_height - height
            bars.append(
                Bar(
                    x=round(LEFT + index * slot + slot * 0.1, 2),
                    y=round(y, 2),
                    width=round(slot * 0.8, 2),
                    height=round(height, 2),
                    colour=colours[model],
                    title=f"{_short_date(day)} · {model}: {formats.number_format(value, 1, use_l10n=True)}",
                )
            )
            base += value
    y_ticks = [
        Tick(
            position=round(TOP + plot_height - i * plot_height / 4, 2),
            label=formats.number_format(step * i, 0, use_l10n=True, force_grouping=True),
        )
        for i in range(5)
    ]
    every = max(1, len(data.days) // 6)
    x_ticks = [
        Tick(position=round(LEFT + i * slot + slot / 2, 2), label=_short_date(day))
        for i, day in enumerate(data.days)
        if i % every == 0
    ]
    legend = [
        LegendItem(
            label=model,
            colour=colours[model],
            total=sum((data.hours.get((day, model), Decimal(0)) for day in data.days), Decimal(0)),
        )
        for model in data.models
    ]
    return BarChart(
        WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, TOP, TOP + plot_height, bars, y_ticks, x_ticks, legend
    )
