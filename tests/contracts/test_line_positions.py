"""New contract lines take the next position (they were all numbered 1 on the admin form)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.contracts import services
from apps.contracts.admin import ContractLineForm
from apps.contracts.models import ContractLine
from tests.factories.catalogue import CustomerFactory, ServerFactory
from tests.factories.contracts import card_line, draft

pytestmark = pytest.mark.django_db


def new_line(contract, server) -> ContractLine:
    return ContractLine(
        contract=contract,
        position=None,
        resource="card",
        gpu_model=server.gpu_model,
        quantity=Decimal("1"),
        term="hourly",
        list_unit_price=Decimal("20.00"),
        discount_percent=Decimal("0"),
    )


def test_lines_added_without_a_position_follow_the_last_one(am):
    server = ServerFactory()
    contract = draft(CustomerFactory(), am, [card_line(server)])
    assert list(contract.lines.values_list("position", flat=True)) == [1]
    second = services.line_save(line=new_line(contract, server), actor=am)
    third = services.line_save(line=new_line(contract, server), actor=am)
    assert (second.position, third.position) == (2, 3)
    assert str(third).startswith(f"{contract} #3 ")


def test_the_admin_form_leaves_a_new_lines_position_empty(am):
    contract = draft(CustomerFactory(), am, [card_line(ServerFactory())])
    form = ContractLineForm(instance=ContractLine(contract=contract))
    assert form.fields["position"].required is False
    assert form["position"].value() is None
    existing = ContractLineForm(instance=contract.lines.get())
    assert existing.fields["position"].required is True
    assert existing["position"].value() == 1
