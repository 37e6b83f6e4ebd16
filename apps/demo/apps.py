from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo data (``manage.py loaddemo``). It sits on top of every other app; nothing imports it."""

    name = "apps.demo"
    label = "demo"
    default_auto_field = "django.db.models.BigAutoField"
