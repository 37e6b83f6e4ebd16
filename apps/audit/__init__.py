"""The audit trail of money-relevant changes (docs/security.md#audit-trail)."""
