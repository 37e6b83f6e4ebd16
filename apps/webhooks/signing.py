"""The ``Suanli-Signature`` header (docs/webhooks.md#signature), and the secrets it is made with.

``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the secret>``; while a rotated
secret is still live, a second ``v1=`` signed with it follows, so receivers holding either secret
verify the delivery. Pure functions: no database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
HEADER = "Suanli-Signature"
EVENT_ID_HEADER = "Suanli-Event-Id"


def secret_new() -> str:
    """A new endpoint secret: ``whsec_`` and 43 URL-safe characters (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with the whole secret string."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(*, secrets_live: list[str], timestamp: int, body: bytes) -> str:
    """``t=…,v1=…[,v1=…]``: one ``v1`` per live secret, the newest first."""
    parts = [f"t={timestamp}"]
    parts += [f"v1={signature(secret=secret, timestamp=timestamp, body=body)}" for secret in secrets_live]
    return ",".join(parts)
