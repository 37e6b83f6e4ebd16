"""Chinese and English: the language switch, remembered in a cookie; amounts and dates formatted
for the language; the compiled catalogue is committed (locale/zh_Hans/LC_MESSAGES/django.mo)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


def switch(client, language: str, next_url: str = "/portal/invoices/"):
    return client.post("/i18n/setlang/", {"language": language, "next": next_url})


def test_english_by_default_in_tests_and_chinese_after_switching(portal_client, world):
    english = portal_client.get("/portal/invoices/").content.decode()
    assert "Invoices" in english and "Amount due" in english
    response = switch(portal_client, "zh-hans")
    assert response.status_code == 302 and response["Location"] == "/portal/invoices/"
    assert portal_client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    chinese = portal_client.get("/portal/invoices/").content.decode()
    assert '<html lang="zh-hans">' in chinese
    assert "账单" in chinese and "应付金额" in chinese and "待付款" in chinese and "退出登录" in chinese
    assert "CNY 1,000.00" in chinese  # amounts grouped as finance writes them
    assert "2026年12月1日" in chinese  # issued on, in the Chinese date format
    # remembered: the next page is Chinese too
    assert "合同" in portal_client.get("/portal/contracts/").content.decode()
    switch(portal_client, "en")
    back = portal_client.get("/portal/invoices/").content.decode()
    assert "2026-12-01" in back and "应付金额" not in back  # ISO dates in English


def test_the_browser_language_is_honoured(client, world):
    body = client.get("/portal/login/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert "登录客户门户" in body and "忘记密码？" in body


def test_detail_pages_in_chinese(portal_client, world):
    switch(portal_client, "zh-hans")
    body = portal_client.get(reverse("portal:invoice_detail", args=[world.acme_invoice.pk])).content.decode()
    assert f"账单 {world.acme_invoice.number}" in body and "含税金额" in body and "下载 PDF" in body
    usage = portal_client.get("/portal/usage/").content.decode()
    assert "1 条记录" in usage and "下载 CSV" in usage
    team = portal_client.get("/portal/team/").content.decode()
    assert "邀请同事" in team and "管理员" in team


def test_messages_and_locks_in_chinese(client, world):
    switch(client, "zh-hans", "/portal/login/")
    for _ in range(5):
        client.post("/portal/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.9.9.9")
    locked = client.post("/portal/login/", {"username": "alice", "password": "x"}, REMOTE_ADDR="10.9.9.9")
    assert "登录失败次数过多" in locked.content.decode()


def test_the_catalogue_is_compiled_and_committed():
    mo = settings.BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.mo"
    po = mo.with_suffix(".po")
    assert mo.exists() and po.exists()
    text = po.read_text(encoding="utf-8")
    assert 'msgstr ""\n\n' not in text.split("\n\n", 1)[1]  # every string translated
