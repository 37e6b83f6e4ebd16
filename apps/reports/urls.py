"""/admin/reports/…: each view behind the admin site's login (``admin_view``) and the report
permission (apps.reports.views.report_view)."""

from django.contrib import admin
from django.urls import path

from apps.reports import efficiency, views

app_name = "reports"

urlpatterns = [
    path("", admin.site.admin_view(views.index), name="index"),
    path("revenue/", admin.site.admin_view(views.revenue), name="revenue"),
    path("ar-aging/", admin.site.admin_view(views.ar_aging), name="ar-aging"),
    path("payback/", admin.site.admin_view(views.payback), name="payback"),
    path("p-year-margin/", admin.site.admin_view(views.p_year_margin), name="p-year-margin"),
    path("unrated-usage/", admin.site.admin_view(views.unrated), name="unrated"),
    path("voucher-redemptions/", admin.site.admin_view(views.vouchers), name="vouchers"),
    path("margin/", admin.site.admin_view(views.margin), name="margin"),
    path("utilisation/", admin.site.admin_view(views.utilisation_report), name="utilisation"),
    path("efficiency/", admin.site.admin_view(efficiency.efficiency_report), name="efficiency"),
]
