from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"
    verbose_name = "Finance reports 财务报表"
    default_auto_field = "django.db.models.BigAutoField"
