"""The finance reports' admin pages (docs/reports.md): parse the period range, call one selector,
render a chart and a table, or the same rows as CSV (``?format=csv``).

Mounted under /admin/reports/ by config/urls.py, each view wrapped in the admin site's
``admin_view`` (staff login); reading needs ``reports.view_reports`` (finance, sales managers,
superusers), anyone else gets 403.
"""

from __future__ import annotations

import csv
import functools
import io
from decimal import Decimal

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from apps.billing.invoicing.selectors import billing_today
from apps.core.db_router import replica_view
from apps.core.memory import cycle_collection_paused
from apps.core.money import decimal_text
from apps.core.periods import Period
from apps.reports import attribution, selectors, utilisation
from apps.reports.charts import bar_chart
from apps.reports.selectors import PeriodRange

PERMISSION = "reports.view_reports"
DEFAULT_MONTHS = 12
CENT = Decimal("0.01")


def money(amount: Decimal | None) -> str:
    return "—" if amount is None else f"{amount.quantize(CENT):,}"


def cell_text(value) -> str:
    """A table cell as people read it: amounts (2 places) with thousands separators, other
    numbers through decimal_text, a missing figure as a dash."""
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return money(value) if value.as_tuple().exponent == -2 else decimal_text(value)
    return str(value)


def csv_cell(value) -> str:
    if type(value) is str:  # most cells: names, codes, labels
        return value
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = str(value)  # an amount (two places) prints as itself, point third from the end
        return text if text[-3:-2] == "." else decimal_text(value)
    return str(value)


def report_view(view):
    view = replica_view(view)  # reads on DATABASE_REPLICA_URL when set (docs/scaling.md#read-replicas)

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        # A report turns tens of thousands of rows into objects and then text; the cyclic garbage
        # collector would walk them all several times over (docs/reports.md#measured-benchreportspy).
        # The page is rendered here, inside the pause, rather than on the way out.
        with cycle_collection_paused():
            response = view(request, *args, **kwargs)
            if isinstance(response, TemplateResponse):
                response.render()
        return response

    return wrapped


def period_range_from(request) -> tuple[PeriodRange, list[str]]:
    """``?from=YYYY-MM&to=YYYY-MM``; by default the twelve months ending with this one. A bad
    value is reported and the default used."""
    this_month = Period.containing(timezone.now(), settings.BILLING_TIME_ZONE)
    first = this_month
    for _ in range(DEFAULT_MONTHS - 1):
        first = first.previous()
    default = PeriodRange(first, this_month)
    try:
        return PeriodRange(
            Period.parse(request.GET["from"]) if request.GET.get("from") else first,
            Period.parse(request.GET["to"]) if request.GET.get("to") else this_month,
        ), []
    except ValueError as error:
        return default, [f"{error}; showing {default} 已显示默认区间"]


def csv_response(filename: str, header: list[str], rows: list[list]) -> HttpResponse:
    # written to a buffer and handed over at once: the response's own write() costs a charset
    # look-up and an encode per row, which for tens of thousands of rows is most of the time
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def render_report(
    request, *, title: str, slug: str, period_range, errors, header, rows, charts, extra=None, html_rows=None
):
    """The same rows as a page (chart + table) or, with ``?format=csv``, as CSV; ``html_rows``,
    when given, are the rows the page shows (the first of a long list, and its totals)."""
    if request.GET.get("format") == "csv":
        suffix = f"-{period_range.first}-{period_range.last}" if period_range else ""
        return csv_response(f"{slug}{suffix}.csv", header, rows)
    query = request.GET.copy()
    query["format"] = "csv"
    context = {
        **admin.site.each_context(request),
        "title": title,
        "period_range": period_range,
        "errors": errors,
        "header": header,
        "rows": [[cell_text(cell) for cell in row] for row in (rows if html_rows is None else html_rows)],
        "charts": charts,
        "csv_url": f"?{query.urlencode()}",
        "reports_url": reverse("reports:index"),
        **(extra or {}),
    }
    return TemplateResponse(request, "admin/reports/report.html", context)


def _range_text(period_range: PeriodRange) -> str:
    return f"{period_range.first}–{period_range.last}"


def charts_per_currency(rows: list[dict], *, label: str, value: str, title: str) -> list[dict]:
    """One bar chart per currency of ``rows`` (amounts never add across currencies): bars named by
    ``row[label]``, as high as ``row[value]`` (none or below zero: no bar, the figure still shown);
    ``title`` is formatted with the currency."""
    return [
        bar_chart(
            [
                (row[label], max(row[value] or Decimal(0), Decimal(0)), money(row[value]))
                for row in rows
                if row["currency"] == currency
            ],
            title=title.format(currency=currency),
        )
        for currency in sorted({row["currency"] for row in rows})
    ]


@report_view
def revenue(request):
    period_range, errors = period_range_from(request)
    by, by_errors = dimension_from(request, default="")
    if by:
        return _revenue_by(request, period_range, errors, by)
    errors += by_errors
    by_month = selectors.revenue_by_month(period_range=period_range)
    by_customer = selectors.revenue_by_customer(period_range=period_range)
    charts = charts_per_currency(
        by_month,
        label="period",
        value="net_amount",
        title=f"Net revenue by month 月度净收入 ({{currency}}, {_range_text(period_range)})",
    )
    header = [
        "by 维度",
        "period or customer 期间或客户",
        "currency 币种",
        "invoices 发票数",
        "net amount 不含税金额",
    ]
    rows = [
        ["month 月份", row["period"], row["currency"], row["invoices"], row["net_amount"]] for row in by_month
    ]
    rows += [
        [
            "customer 客户",
            f"{row['customer_code']} {row['customer_name']}",
            row["currency"],
            row["invoices"],
            row["net_amount"],
        ]
        for row in by_customer
    ]
    html_rows, note = _page_rows(
        rows,
        0,
        "Issued and paid invoices' net amounts (excluding VAT) by billing period. 已开具及已支付发票的不含税金额。",
    )
    return render_report(
        request,
        title="Revenue by month and customer 收入(按月、按客户)",
        slug="revenue",
        period_range=period_range,
        errors=errors,
        header=header,
        rows=rows,
        charts=charts,
        html_rows=html_rows,
        extra={"note": note, "dimensions": dimension_links(request, "", REVENUE_DIMENSIONS)},
    )


@report_view
def ar_aging(request):
    today = billing_today(timezone.now())
    buckets = selectors.ar_aging(today=today)
    charts = charts_per_currency(
        buckets,
        label="label",
        value="amount",
        title=f"Amount due by days past due 按逾期天数的应收 ({{currency}}, {today.isoformat()})",
    )
    header = ["bucket 账龄", "currency 币种", "customer 客户", "invoices 发票数", "amount due 应收金额"]
    per_bucket = PAGE_ROWS // len(selectors.BUCKETS)
    # the CSV lists every customer; the page the largest of each bucket, so only those become rows
    every = request.GET.get("format") == "csv"
    rows, cut = [], False
    for row in buckets:
        customers = row["customers"] if every else row["customers"][:per_bucket]
        cut = cut or len(customers) < len(row["customers"])
        rows.append([row["label"], row["currency"], "all 全部", row["invoices"], row["amount"]])
        rows += [
            [
                row["label"],
                row["currency"],
                f"{customer['customer_code']} {customer['customer_name']}",
                customer["invoices"],
                customer["amount"],
            ]
            for customer in customers
        ]
    note = f"Issued, unpaid invoices' amount due (total − voucher − credited − paid) by days past due on {today.isoformat()} ({settings.BILLING_TIME_ZONE}). 截至当日的未付发票应收金额。"
    if cut:
        note += f" Showing the {per_bucket} largest customers of each bucket; the CSV has them all. 每档显示前{per_bucket}个客户，CSV含全部。"
    return render_report(
        request,
        title="Accounts receivable aging 应收账龄",
        slug=f"ar-aging-{today.isoformat()}",
        period_range=None,
        errors=[],
        header=header,
        rows=rows,
        charts=charts,
        extra={"note": note},
    )


def _soonest(row: dict) -> tuple:
    return (row["payback_months"] is None, row["payback_months"] or 0, row["serial"])


@report_view
def payback(request):
    period_range, errors = period_range_from(request)
    servers = selectors.server_payback(period_range=period_range)
    charts = [
        bar_chart(
            [
                (
                    row["serial"],
                    row["payback_months"] or Decimal(0),
                    decimal_text(row["payback_months"])
                    if row["payback_months"] is not None
                    else "never 无法回本",
                )
                for row in sorted(servers, key=_soonest)[:CHART_BARS]
            ],
            title=f"Payback months per platform-owned server, the {CHART_BARS} soonest 自有服务器回本月数 ({_range_text(period_range)})",
        )
    ]
    header = [
        "server 服务器",
        "provider 供应商",
        "GPU model 显卡型号",
        "currency 币种",
        "purchase cost 采购成本",
        "revenue in range 区间收入",
        "annual revenue 年化收入",
        "annual cash cost 年现金成本",
        "payback months 回本月数",
    ]
    rows = [
        [
            row["serial"],
            row["provider_code"],
            row["gpu_model"],
            row["currency"],
            row["purchase_amount"],
            row["revenue_amount"],
            row["annual_revenue_amount"],
            row["annual_cash_cost_amount"],
            row["payback_months"],
        ]
        for row in servers
    ]
    html_rows, note = _page_rows(
        rows,
        0,
        "Payback months = purchase cost / (annual revenue − annual cash cost) × 12; annual revenue is the range's billed net revenue of the server × 12 / months in the range. 回本月数 = 采购成本 / (年化收入 − 年现金成本) × 12。",
    )
    return render_report(
        request,
        title="Payback per platform-owned server 自有服务器回本周期",
        slug="payback",
        period_range=period_range,
        errors=errors,
        header=header,
        rows=rows,
        charts=charts,
        html_rows=html_rows,
        extra={"note": note},
    )


@report_view
def p_year_margin(request):
    period_range, errors = period_range_from(request)
    providers = selectors.provider_p_year_margin(period_range=period_range)
    charts = charts_per_currency(
        providers,
        label="provider_code",
        value="margin_per_p_year",
        title=f"Margin per P-year by provider 每P年毛利(按供应商) ({{currency}}, {_range_text(period_range)})",
    )
    header = [
        "provider 供应商",
        "currency 币种",
        "net revenue 净收入",
        "provider cost 供应商成本",
        "P capacity P算力",
        "revenue per P-year 每P年收入",
        "cost per P-year 每P年成本",
        "margin per P-year 每P年毛利",
    ]
    rows = [
        [
            f"{row['provider_code']} {row['provider_name']}",
            row["currency"],
            row["revenue_amount"],
            row["cost_amount"],
            row["p_capacity"],
            row["revenue_per_p_year"],
            row["cost_per_p_year"],
            row["margin_per_p_year"],
        ]
        for row in providers
    ]
    return render_report(
        request,
        title="Light-asset margin per P-year 轻资产每P年毛利",
        slug="p-year-margin",
        period_range=period_range,
        errors=errors,
        header=header,
        rows=rows,
        charts=charts,
        extra={
            "note": "From provider settlement statements in the range: annualised customer net revenue and provider cost, each divided by the provider's P capacity (servers not retired). 基于供应商结算单。"
        },
    )


@report_view
def unrated(request):
    period_range, errors = period_range_from(request)
    providers = selectors.unrated_by_provider(period_range=period_range)
    charts = [
        bar_chart(
            [(row["provider_code"], Decimal(row["records"]), str(row["records"])) for row in providers],
            title=f"Unrated usage records by provider 未计费用量(按供应商) ({_range_text(period_range)})",
        )
    ]
    return render_report(
        request,
        title="Unrated usage by provider 未计费用量",
        slug="unrated-usage",
        period_range=period_range,
        errors=errors,
        header=["provider 供应商", "records 记录数"],
        rows=[[row["provider_code"], row["records"]] for row in providers],
        charts=charts,
        extra={
            "note": "Usage records (not voided) that no firm allocation covers, overlapping the range. 没有分配覆盖的用量记录。"
        },
    )


@report_view
def vouchers(request):
    period_range, errors = period_range_from(request)
    rows = selectors.voucher_redemptions(period_range=period_range)
    charts = charts_per_currency(
        rows,
        label="code",
        value="net",
        title=f"Net voucher redemptions by programme 算力券净核销(按项目) ({{currency}}, {_range_text(period_range)})",
    )
    return render_report(
        request,
        title="Voucher redemptions per programme 算力券核销",
        slug="voucher-redemptions",
        period_range=period_range,
        errors=errors,
        header=[
            "programme 项目",
            "name 名称",
            "currency 币种",
            "redemptions 核销笔数",
            "redeemed 核销金额",
            "reversed 冲回金额",
            "net 净核销",
        ],
        rows=[
            [
                row["code"],
                row["name"],
                row["currency"],
                row["redemptions"],
                row["redeemed"],
                row["reversed"],
                row["net"],
            ]
            for row in rows
        ],
        charts=charts,
        extra={
            "note": "From the voucher ledger: redemptions entered in the range, less redemptions given back "
            "when their invoice was voided. 来自算力券流水：区间内核销减去因发票作废冲回的金额。"
        },
    )


# -- revenue and margin by dimension (docs/reports.md#revenue-and-margin-by-dimension) ----------

# the revenue page's dimensions: "" is month and customer together, as it always was
REVENUE_DIMENSIONS = [
    ("", "month and customer 按月、按客户"),
    ("gpu-model", "GPU model 显卡型号"),
    ("provider", "provider 供应商"),
    ("hub", "hub 枢纽"),
]
MARGIN_DIMENSIONS = [(key, label) for key, (label, *_) in attribution.DIMENSIONS.items()]


def dimension_from(request, *, default: str) -> tuple[str, list[str]]:
    """``?by=`` one of attribution.DIMENSIONS; a bad one is reported and ``default`` used."""
    by = request.GET.get("by", default)
    if by == default or by in attribution.DIMENSIONS:
        return by, []
    return default, [f"unknown dimension {by!r}; showing {default or 'month and customer'} 未知维度"]


def dimension_links(request, current: str, dimensions: list[tuple[str, str]]) -> list[dict]:
    """The ``by=`` choices as links that keep the period range."""
    links = []
    for key, label in dimensions:
        query = request.GET.copy()
        query.pop("format", None)
        if key:
            query["by"] = key
        else:
            query.pop("by", None)
        links.append({"url": f"?{query.urlencode()}", "label": label, "current": key == current})
    return links


def _dimension_cells(row: attribution.MarginRow, by: str) -> list:
    return [attribution.DIMENSIONS[by][0], row.key, row.label, row.currency]


def _short(row: attribution.MarginRow) -> str:
    return row.key if row.attributed else "unattributed"


# a dimension with many keys (customers): the page's chart shows the largest CHART_BARS per
# currency and its table the first PAGE_ROWS rows and the totals; the CSV has every row
CHART_BARS = 20
PAGE_ROWS = 200


def _bars(
    rows: list[attribution.MarginRow], currency: str, value, *, top: bool
) -> list[tuple[str, Decimal, str]]:
    """The chart's bars of ``currency``: with ``top``, the largest CHART_BARS keys by ``value``;
    the unattributed rows last."""
    mine = [r for r in rows if r.currency == currency]
    attributed = [r for r in mine if r.attributed]
    if top and len(attributed) > CHART_BARS:
        attributed = sorted(attributed, key=lambda r: -value(r))[:CHART_BARS]
    return [
        (_short(r), max(value(r), Decimal(0)), money(value(r)))
        for r in attributed + [r for r in mine if not r.attributed]
    ]


def _page_rows(
    table: list[list], totals: int, note: str, *, body: int | None = None
) -> tuple[list[list] | None, str]:
    """The first PAGE_ROWS rows of ``table`` and its last ``totals`` rows, and the note saying so;
    ``body``: the number of rows the report has, when ``table`` holds only the first of them."""
    if body is None:
        body = len(table) - totals
    if body <= PAGE_ROWS:
        return None, note
    shown = table[:PAGE_ROWS] + table[len(table) - totals :]
    return (
        shown,
        f"{note} Showing the first {PAGE_ROWS} of {body} rows and the totals; the CSV has them all. 页面显示前{PAGE_ROWS}行，CSV含全部。",
    )


def _dimension_report(
    request, period_range, errors, by, *, name, chart, columns, note, dimensions
) -> TemplateResponse | HttpResponse:
    """Revenue or margin by ``by``: a chart per currency (``chart``: its English and Chinese name
    and the value of a row), the rows and their totals with ``columns`` as (header, value of a
    row) after the dimension's cells, paged."""
    rows = attribution.revenue_margin(period_range=period_range, by=by)
    totals = attribution.margin_totals(rows)
    label = attribution.DIMENSIONS[by][0]
    english, chinese = name
    chart_english, chart_chinese, chart_value = chart
    charts = [
        bar_chart(
            _bars(rows, t.currency, chart_value, top=by != "month"),
            title=f"{chart_english} by {label} {chart_chinese} ({t.currency}, {_range_text(period_range)})",
        )
        for t in totals
    ]
    header = ["by 维度", "key 键", "name 名称", "currency 币种", *(title for title, _ in columns)]
    # the CSV has every row; the page only the rows it shows, so only those are made into cells
    shown = rows if request.GET.get("format") == "csv" else rows[:PAGE_ROWS]
    table = [[*_dimension_cells(r, by), *(value(r) for _, value in columns)] for r in shown + totals]
    html_rows, note = _page_rows(table, len(totals), note, body=len(rows))
    return render_report(
        request,
        title=f"{english} by {label} {chinese}",
        slug=f"{english.lower()}-by-{by}",
        period_range=period_range,
        errors=errors,
        header=header,
        rows=table,
        charts=charts,
        html_rows=html_rows,
        extra={"note": note, "dimensions": dimension_links(request, by, dimensions)},
    )


def _revenue_by(request, period_range, errors, by):
    return _dimension_report(
        request,
        period_range,
        errors,
        by,
        name=("Revenue", "收入"),
        chart=("Net revenue", "净收入", lambda r: r.revenue_amount),
        columns=[
            ("net amount 不含税金额", lambda r: r.revenue_amount),
            ("of which not settled 其中未结算", lambda r: r.unsettled_amount),
        ],
        note="Issued and paid invoices' line net amounts, attributed to hardware through the provider "
        "settlement lines; what cannot be attributed is shown as an unattributed row, so the rows add up "
        "to the total. 通过供应商结算行归属到硬件；无法归属的金额单列。",
        dimensions=REVENUE_DIMENSIONS,
    )


@report_view
def margin(request):
    period_range, errors = period_range_from(request)
    by, by_errors = dimension_from(request, default="month")
    return _dimension_report(
        request,
        period_range,
        errors + by_errors,
        by,
        name=("Margin", "毛利"),
        chart=("Margin", "毛利", lambda r: r.margin_amount),
        columns=[
            ("net revenue 净收入", lambda r: r.revenue_amount),
            ("provider cost 供应商成本", lambda r: r.cost_amount),
            ("margin 毛利", lambda r: r.margin_amount),
            ("margin % 毛利率", lambda r: r.margin_percent),
            ("revenue not settled 未结算收入", lambda r: r.unsettled_amount),
        ],
        note="Margin = customer net revenue (excl. VAT) − provider cost from the settlement lines "
        "(draft statements included). Revenue not settled has no cost yet: its margin is not final. "
        "毛利 = 客户不含税收入 − 供应商结算成本；未结算收入尚无成本。",
        dimensions=MARGIN_DIMENSIONS,
    )


# -- utilisation (docs/reports.md#utilisation-and-idle-capacity) ---------------------------------


@report_view
def utilisation_report(request):
    period_range, errors = period_range_from(request)
    now = timezone.now()
    rows = utilisation.utilisation(period_range=period_range, now=now)
    total = utilisation.utilisation_total(rows)
    providers = [r for r in rows if not r["site"]]
    charts = [
        bar_chart(
            [
                (
                    r["provider_code"],
                    r["utilisation_percent"] or Decimal(0),
                    "—" if r["utilisation_percent"] is None else f"{r['utilisation_percent']} %",
                )
                for r in providers
            ],
            title=f"Utilisation by provider 利用率(按供应商) (%, {_range_text(period_range)})",
        )
    ]
    header = [
        "provider 供应商",
        "site 站点",
        "hub 枢纽",
        "cards 卡数",
        "available card-hours 可用卡时",
        "allocated card-hours 已分配卡时",
        "utilisation % 利用率",
        "idle card-hours 空闲卡时",
        "idle P-hours 空闲P时",
        "idle cards now 当前空闲卡",
    ]

    def cells(row: dict, provider: str, site: str) -> list:
        return [
            provider,
            site,
            row.get("hub", ""),
            row["cards"],
            row["available_hours"],
            row["allocated_hours"],
            row["utilisation_percent"],
            row["idle_hours"],
            row["idle_p_hours"],
            row["idle_cards_now"],
        ]

    table = [
        cells(r, f"{r['provider_code']} {r['provider_name']}", r["site"] or "all sites 全部站点")
        for r in rows
    ]
    if rows:
        table.append(cells(total, "all providers 全部供应商", ""))
    return render_report(
        request,
        title="Utilisation and idle capacity 利用率与空闲算力",
        slug="utilisation",
        period_range=period_range,
        errors=errors,
        header=header,
        rows=table,
        charts=charts,
        extra={
            "note": "Allocated card-hours (under a firm allocation) / available card-hours (cards not retired, "
            "for the hours they existed in the range, up to now). Idle cards now: in service, not allocated "
            "at this moment. 已分配卡时 / 可用卡时（未退役的卡在区间内存在的小时，截至当前）。"
        },
    )


REPORTS = [
    ("reports:revenue", "Revenue by month and customer 收入"),
    ("reports:revenue", "Revenue by GPU model 收入(按显卡型号)", "by=gpu-model"),
    ("reports:revenue", "Revenue by provider 收入(按供应商)", "by=provider"),
    ("reports:revenue", "Revenue by hub 收入(按枢纽)", "by=hub"),
    ("reports:ar-aging", "Accounts receivable aging 应收账龄"),
    ("reports:payback", "Payback per platform-owned server 自有服务器回本周期"),
    ("reports:p-year-margin", "Light-asset margin per P-year 轻资产每P年毛利"),
    ("reports:unrated", "Unrated usage by provider 未计费用量"),
    ("reports:vouchers", "Voucher redemptions per programme 算力券核销"),
    ("reports:margin", "Margin by month, customer, GPU model, provider and hub 毛利(多维度)"),
    ("reports:utilisation", "Utilisation and idle capacity per provider and site 利用率与空闲算力"),
    ("reports:efficiency", "Efficiency per contract: billed and busy card-hours, utilisation, energy 能效"),
]


@report_view
def index(request):
    now = timezone.now()
    figures = selectors.month_figures(
        period=Period.containing(now, settings.BILLING_TIME_ZONE).previous(), today=billing_today(now)
    )
    for row in figures["revenue"]:
        row["net_amount_text"] = money(row["net_amount"])
    for row in figures["receivable"]:
        row["amount_text"] = money(row["amount"])
        row["overdue_text"] = money(row["overdue_amount"])
    month = PeriodRange(Period.parse(figures["period"]), Period.parse(figures["period"]))
    margins = attribution.margin_totals(attribution.revenue_margin(period_range=month, by="month"))
    usage = utilisation.utilisation_total(utilisation.utilisation(period_range=month, now=now))
    context = {
        **admin.site.each_context(request),
        "title": "Finance reports 财务报表",
        "figures": figures,
        "margins": [
            {
                "currency": row.currency,
                "margin_text": money(row.margin_amount),
                "percent": row.margin_percent,
                "cost_text": money(row.cost_amount),
                "unsettled_text": money(row.unsettled_amount) if row.unsettled_amount else "",
            }
            for row in margins
        ],
        "utilisation": usage,
        "reports": [
            {"url": reverse(name) + (f"?{query[0]}" if query else ""), "label": label}
            for name, label, *query in REPORTS
        ],
    }
    return TemplateResponse(request, "admin/reports/index.html", context)
