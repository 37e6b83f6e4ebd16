"""customer_create: one transaction, so a failure after the row is written leaves nothing behind."""

from __future__ import annotations

import pytest

from apps.customers import services
from apps.customers.models import Customer

pytestmark = pytest.mark.django_db


def test_a_failure_midway_through_customer_create_leaves_no_customer(monkeypatch):
    real_save = services._save

    def save_then_fail(customer, *, actor):
        real_save(customer, actor=actor)
        assert Customer.objects.filter(code="acme").exists()  # the row was written …
        raise RuntimeError("history write failed")

    monkeypatch.setattr(services, "_save", save_then_fail)
    with pytest.raises(RuntimeError, match="history write failed"):
        services.customer_create(code="acme", name="Acme 算力", tax_id="91110000600037341L")
    assert Customer.objects.count() == 0  # … and rolled back with the failure
