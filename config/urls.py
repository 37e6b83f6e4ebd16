from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from apps.billing.payments.views import stripe_webhook
from config import admin_home
from config.api_docs import DocsView, SchemaView

admin.site.site_header = "算力 Suanli · GPU compute leasing"
admin.site.site_title = "Suanli admin"
admin.site.index_title = "Billing and contracts 计费与合同"
admin_home.install(admin.site)  # the role home pages, above the app list

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/reports/", include("apps.reports.urls")),  # finance reports (docs/reports.md)
    path("admin/", admin.site.urls),
    path("api/v1/", include("apps.api.urls")),
    path("portal/", include("apps.portal.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("payments/stripe/webhook/", stripe_webhook, name="stripe-webhook"),
    # Behind a login where API_DOCS_REQUIRE_LOGIN says so (production; docs/security.md).
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="api-docs"),
]
