"""Admin of webhook endpoints and their delivery log (docs/webhooks.md#admin).

Finance and operations manage every endpoint (customers' and providers'); account managers read
those of the customers they manage. A new endpoint's secret, and a rotated one, are shown once in
the page's message; the change page never shows a secret. The delivery log lists every event sent
to an endpoint with its attempts; "Re-send" sends the selected deliveries again (a service).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.validators import URLValidator
from django.utils import timezone
from django.utils.html import format_html_join

from apps.core.admin import GuardedAdmin, GuardedHistoryAdmin, ReadOnlyAdminMixin
from apps.core.admin_errors import changeform_with_service_errors, form_with_service_errors, refuse
from apps.core.errors import DomainError
from apps.core.periods import local_time_text

from . import selectors, services
from .models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint


def _when(value) -> str:
    return local_time_text(value) if value else "—"


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="http(s) only; redirects are not followed.",
    )
    event_types = forms.MultipleChoiceField(
        label="events 事件",
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event of the owner (customers: invoices, credit notes, contracts; "
        "providers: usage and settlements). 不勾选：接收全部事件。",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["customer", "provider", "url", "enabled", "description"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and "event_types" in self.fields:
            self.initial["event_types"] = self.instance.event_list

    def clean(self):
        cleaned = super().clean()
        if "customer" in self.fields and "provider" in self.fields:
            if bool(cleaned.get("customer")) == bool(cleaned.get("provider")):
                raise forms.ValidationError("Choose either a customer or a provider. 客户与供应商二选一。")
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(GuardedHistoryAdmin):
    row_scoped = True
    form = WebhookEndpointForm
    list_display = ("url", "owner_text", "events_text", "enabled", "description", "updated")
    list_filter = ("enabled",)
    search_fields = (
        "url",
        "description",
        "customer__code",
        "customer__name",
        "provider__code",
        "provider__name",
    )
    list_select_related = ("customer", "provider")
    autocomplete_fields = ["customer", "provider"]
    actions = ["rotate_secret"]

    def get_queryset(self, request):
        return selectors.webhook_endpoint_list(user=request.user)

    def get_readonly_fields(self, request, obj=None):
        fields = ("secret_state",)
        return ("customer", "provider", *fields) if obj is not None else fields

    def get_fields(self, request, obj=None):
        fields = ["customer", "provider", "url", "event_types", "enabled", "description"]
        return [*fields, "secret_state"] if obj is not None else fields

    @admin.display(description="owner 所属")
    def owner_text(self, obj):
        return (
            f"customer 客户 {obj.customer.code}"
            if obj.customer_id
            else f"provider 供应商 {obj.provider.code}"
        )

    @admin.display(description="events 事件")
    def events_text(self, obj):
        return ", ".join(obj.event_list) if obj.events else "all 全部"

    @admin.display(description="updated 更新于", ordering="updated_at")
    def updated(self, obj):
        return _when(obj.updated_at)

    @admin.display(description="secret 密钥")
    def secret_state(self, obj):
        text = "whsec_… (shown once, at creation or rotation 仅在创建或轮换时显示一次)"
        expires = obj.previous_secret_expires_at
        if obj.previous_secret and expires and expires > timezone.now():
            text += f"; the previous secret still signs until {_when(expires)} 旧密钥仍有效"
        return text

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                saved = services.webhook_endpoint_update(
                    endpoint=obj,
                    actor=request.user,
                    url=data["url"],
                    events=data.get("event_types") or [],
                    enabled=data["enabled"],
                    description=data["description"],
                )
            else:
                saved, secret = services.webhook_endpoint_create(
                    owner=data.get("customer") or data.get("provider"),
                    url=data["url"],
                    events=data.get("event_types") or [],
                    enabled=data["enabled"],
                    description=data["description"],
                    actor=request.user,
                )
                self.message_user(
                    request,
                    f"Signing secret of {saved.url} (shown only now; copy it) 签名密钥（仅显示一次）: {secret}",
                    messages.WARNING,
                )
        except DomainError as exc:
            refuse(exc)  # the form comes back with the service's message (apps.core.admin_errors)
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request, obj):
        services.webhook_endpoint_delete(endpoint=obj, actor=request.user)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return changeform_with_service_errors(
            super().changeform_view, request, object_id, form_url, extra_context
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        return form_with_service_errors(request, super().get_form(request, obj, change=change, **kwargs))

    @admin.action(description="Rotate the signing secret 轮换签名密钥", permissions=["change"])
    def rotate_secret(self, request, queryset):
        now = timezone.now()
        for endpoint in queryset:
            endpoint, secret = services.webhook_endpoint_rotate_secret(
                endpoint=endpoint, now=now, actor=request.user
            )
            self.log_change(request, endpoint, "Rotated the signing secret.")
            self.message_user(
                request,
                f"New signing secret of {endpoint.url} (shown only now; the previous one also signs until "
                f"{_when(endpoint.previous_secret_expires_at)}) 新签名密钥: {secret}",
                messages.WARNING,
            )


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("attempted", "status_code", "duration_ms", "error", "response_snippet")
    readonly_fields = fields

    @admin.display(description="attempted at 时间")
    def attempted(self, obj):
        return _when(obj.attempted_at)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, GuardedAdmin):
    """The delivery log: one row per event and endpoint, its attempts below it."""

    row_scoped = True
    list_display = (
        "event_type",
        "event_id",
        "endpoint",
        "status",
        "attempt_count",
        "last_status_code",
        "created",
        "next_attempt",
        "delivered",
    )
    list_filter = ("status", "event__type")
    search_fields = (
        "event__public_id",
        "endpoint__url",
        "endpoint__customer__code",
        "endpoint__provider__code",
    )
    fields = (
        "event_type",
        "event_id",
        "endpoint",
        "status",
        "attempt_count",
        "last_status_code",
        "last_error",
        "created",
        "next_attempt",
        "delivered",
        "retry_until_text",
        "payload",
    )
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    def get_queryset(self, request):
        return selectors.webhook_delivery_list(user=request.user)

    @admin.display(description="event 事件", ordering="event__type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description="event id 事件编号")
    def event_id(self, obj):
        return obj.event.public_id

    @admin.display(description="created 创建于", ordering="created_at")
    def created(self, obj):
        return _when(obj.created_at)

    @admin.display(description="next attempt 下次尝试", ordering="next_attempt_at")
    def next_attempt(self, obj):
        return _when(obj.next_attempt_at)

    @admin.display(description="delivered 送达于", ordering="delivered_at")
    def delivered(self, obj):
        return _when(obj.delivered_at)

    @admin.display(description="retries until 重试截止")
    def retry_until_text(self, obj):
        return _when(obj.retry_until)

    @admin.display(description="body 内容")
    def payload(self, obj):
        return format_html_join("", "<pre>{}</pre>", [(services.event_body(obj.event).decode(),)])

    def has_resend_permission(self, request):
        return request.user.has_perm("webhooks.resend_webhookdelivery")

    @admin.action(description="Re-send selected deliveries 重新发送", permissions=["resend"])
    def resend(self, request, queryset):
        now = timezone.now()
        sent = 0
        for delivery in queryset:
            try:
                services.webhook_delivery_resend(delivery=delivery, now=now, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{delivery}: {exc.message}", messages.ERROR)
                continue
            sent += 1
        if sent:
            self.message_user(
                request,
                f"{sent} deliver{'ies' if sent != 1 else 'y'} queued to be sent again 已重新排队发送.",
                messages.SUCCESS,
            )
