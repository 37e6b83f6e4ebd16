"""/portal/: the customer portal (docs/portal.md#pages)."""

from django.urls import path

from apps.portal.views import (
    auth,
    contracts,
    dashboard,
    efficiency,
    incidents,
    invoices,
    team,
    usage,
    vouchers,
)

app_name = "portal"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("password-reset/", auth.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", auth.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", auth.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("customer/", auth.customer_switch, name="customer_switch"),
    path("invoices/", invoices.invoice_list_view, name="invoice_list"),
    path("invoices/<int:pk>/", invoices.invoice_detail, name="invoice_detail"),
    path("invoices/<int:pk>/pdf/", invoices.invoice_pdf_view, name="invoice_pdf"),
    path("invoices/<int:pk>/pay/", invoices.invoice_pay, name="invoice_pay"),
    path("credit-notes/<int:pk>/pdf/", invoices.credit_note_pdf_view, name="credit_note_pdf"),
    path("payments/success/", invoices.payment_success, name="payment_success"),
    path("payments/cancel/", invoices.payment_cancel, name="payment_cancel"),
    path("contracts/", contracts.contract_list_view, name="contract_list"),
    path("contracts/<int:pk>/", contracts.contract_detail, name="contract_detail"),
    path("usage/", usage.usage_list, name="usage_list"),
    path("usage.csv", usage.usage_csv, name="usage_csv"),
    path("efficiency/", efficiency.efficiency, name="efficiency"),
    path("incidents/", incidents.incident_list, name="incident_list"),
    path("vouchers/", vouchers.voucher_list_view, name="voucher_list"),
    path("vouchers/<int:pk>/claim-pack/", vouchers.voucher_claim_pack, name="voucher_claim_pack"),
    path("team/", team.team, name="team"),
]
