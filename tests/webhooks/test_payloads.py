"""A refused batch's event carries what the sender sent, made safe for the database (jsonb takes no
lone surrogate and no NUL) and cut to the first 100 errors."""

from __future__ import annotations

import datetime
import json
from types import SimpleNamespace

from django.utils.translation import gettext_lazy

from apps.webhooks import payloads

RECEIVED = datetime.datetime(2026, 11, 20, 2, tzinfo=datetime.UTC)


def test_sender_text_is_escaped_and_the_errors_are_capped():
    errors = [
        {
            "index": 0,
            "event_id": "probe-\ud800\x00",
            "code": "invalid",
            "errors": {"card": [gettext_lazy("Unknown.")]},
        },
        {"index": 1, "event_id": {"not": "a string"}, "code": "invalid", "errors": {}},
        *({"index": n, "event_id": f"e{n}", "code": "invalid", "errors": {}} for n in range(2, 250)),
    ]
    data = payloads.usage_rejected_data(
        {"records": 250, "errors": errors, "received_at": RECEIVED}, SimpleNamespace(code="bj-idc")
    )
    assert (data["records"], data["stored"], data["error_count"], len(data["errors"])) == (250, 0, 250, 100)
    assert data["received_at"] == "2026-11-20T10:00:00+08:00"
    first, second = data["errors"][:2]
    assert first["event_id"] == "probe-\\ud800\\x00"
    assert first["errors"] == {"card": ["Unknown."]}
    assert second["event_id"] == "{'not': 'a string'}"
    assert b"probe-\\\\ud800" in json.dumps(data, ensure_ascii=False).encode(
        "utf-8"
    )  # no lone surrogate left
