"""The reports' SVG bar chart: labels and values never print over their neighbours."""

from decimal import Decimal

from django.template.loader import render_to_string

from apps.reports.charts import LABEL_CHAR, VALUE_CHAR, WIDTH, bar_chart


def test_a_few_short_labels_stand_upright_with_their_values():
    chart = bar_chart(
        [("2026-09", Decimal("669968.20"), "669,968.20"), ("2026-10", Decimal("1595379.75"), "1,595,379.75")],
        title="Net revenue",
    )
    assert chart["slanted"] is False
    assert chart["height"] == 260
    assert [bar["label_shown"] for bar in chart["bars"]] == ["2026-09", "2026-10"]
    assert all(bar["value_shown"] for bar in chart["bars"])
    # the largest bar fills the plot; the other is in proportion
    assert chart["bars"][1]["height"] == 200.0
    assert chart["bars"][0]["height"] == round(float(Decimal("669968.20") / Decimal("1595379.75")) * 200, 1)
    svg = render_to_string("admin/reports/bar_chart.html", {"chart": chart})
    assert "rotate(" not in svg
    assert ">1,595,379.75</text>" in svg


def test_many_long_labels_are_slanted_shortened_and_kept_inside_the_chart():
    items = [(f"C-2026-{n:06d} customer-with-a-long-name-{n}", Decimal(n), f"{n}.00 %") for n in range(1, 41)]
    chart = bar_chart(items, title="Busy share")
    assert chart["slanted"] is True
    slot = chart["bars"][1]["label_x"] - chart["bars"][0]["label_x"]
    assert slot < len(items[0][0]) * LABEL_CHAR  # upright they would overlap
    first = chart["bars"][0]
    assert first["label_shown"].endswith("…") and len(first["label_shown"]) == 20
    assert first["label"] == items[0][0]  # the whole label stays in the tooltip
    # a slanted label reaches left by cos 40° of its length: the first one still starts inside
    assert first["label_x"] - len(first["label_shown"]) * LABEL_CHAR * 0.77 >= 0
    assert chart["bars"][-1]["label_x"] < WIDTH
    # and the chart grows downwards to hold them
    assert chart["height"] > 260
    # values wider than their slot are left to the tooltip
    assert not any(bar["value_shown"] for bar in chart["bars"])
    assert len(items[0][2]) * VALUE_CHAR > slot
    svg = render_to_string("admin/reports/bar_chart.html", {"chart": chart})
    assert svg.count("rotate(-40") == 40
    assert "<title>C-2026-000001 customer-with-a-long-name-1: 1.00 %</title>" in svg
