from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.billing.payments.views import stripe_webhook
from config import admin_home

admin.site.site_header = "算力 Suanli · GPU compute leasing"
admin.site.site_title = "Suanli admin"
admin.site.index_title = "Billing and contracts 计费与合同"
admin_home.install(admin.site)  # the role home pages, above the app list

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("apps.api.urls")),
    path("portal/", include("apps.portal.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("payments/stripe/webhook/", stripe_webhook, name="stripe-webhook"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
