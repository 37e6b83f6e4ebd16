"""The efficiency report (docs/hardware-truth.md#efficiency): per contract and month, billed
card-hours against the metering agent's busy card-hours, mean utilisation and energy; a chart of
the busy share, the table, and the same rows as CSV.

One query per month of the range (``contract_efficiency_list``); by default the last closed month.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from apps.billing.invoicing.efficiency import contract_efficiency_list
from apps.core.periods import Period
from apps.reports.charts import bar_chart
from apps.reports.selectors import PeriodRange
from apps.reports.views import period_range_from, render_report, report_view

CHART_BARS = 20
MAX_MONTHS = 12

HEADER = [
    "month 月份",
    "contract 合同",
    "customer 客户",
    "billed card-hours 计费卡时",
    "busy card-hours 繁忙卡时",
    "busy share % 繁忙占比",
    "mean utilisation % 平均利用率",
    "energy kWh 能耗",
]


@report_view
def efficiency_report(request):
    if request.GET.get("from") or request.GET.get("to"):
        period_range, errors = period_range_from(request)
    else:
        last = Period.containing(timezone.now(), settings.BILLING_TIME_ZONE).previous()
        period_range, errors = PeriodRange(last, last), []
    periods = period_range.periods
    if len(periods) > MAX_MONTHS:
        errors.append(f"At most {MAX_MONTHS} months; showing the last {MAX_MONTHS} 最多显示{MAX_MONTHS}个月")
        periods = periods[-MAX_MONTHS:]
        period_range = PeriodRange(periods[0], periods[-1])
    found = [row for period in periods for row in contract_efficiency_list(period=period)]
    rows = [
        [
            r.period,
            r.contract,
            f"{r.customer_code} {r.customer_name}",
            r.billed_card_hours,
            r.busy_card_hours,
            r.busy_share_percent,
            r.mean_utilisation_percent,
            r.energy_kwh,
        ]
        for r in found
    ]
    largest = sorted(found, key=lambda r: r.billed_card_hours, reverse=True)[:CHART_BARS]
    charts = [
        bar_chart(
            [
                (
                    f"{r.contract} {r.period}" if len(periods) > 1 else r.contract,
                    r.busy_share_percent or Decimal(0),
                    "—" if r.busy_share_percent is None else f"{r.busy_share_percent} %",
                )
                for r in largest
            ],
            title=f"Busy share of billed card-hours 繁忙卡时占比 (%, {period_range.first}–{period_range.last})",
        )
    ]
    note = (
        "Billed card-hours: leases' allocated card-hours, hourly lines' billed usage hours; busy: the "
        "metering agent's hours on the allocated cards (at or above a line's busy threshold). "
        "计费卡时与计量代理观测的繁忙卡时、平均利用率、能耗。"
    )
    if len(found) > CHART_BARS:
        note += f" The chart shows the {CHART_BARS} contracts with the most billed card-hours. 图表显示计费卡时最多的{CHART_BARS}份合同。"
    return render_report(
        request,
        title="Efficiency per contract and month 能效(按合同、按月)",
        slug="efficiency",
        period_range=period_range,
        errors=errors,
        header=HEADER,
        rows=rows,
        charts=charts,
        extra={"note": note},
    )
