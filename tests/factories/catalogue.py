"""factory_boy factories for providers, hardware and customers, with explicit Decimal values."""

from __future__ import annotations

import uuid

import factory

from apps.core.validators import uscc_check_character
from apps.customers.models import Customer
from apps.inventory.models import Card, GpuModel, Server
from apps.providers.models import Provider, ProviderType, Site


def card_uuid(n: int) -> str:
    return "GPU-" + str(uuid.UUID(int=n))


def valid_uscc(n: int) -> str:
    first17 = f"9111010{n:010d}"
    return first17 + uscc_check_character(first17)


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"prov-{n}")
    name = factory.Sequence(lambda n: f"Provider {n}")
    type = ProviderType.IDC


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    provider = factory.SubFactory(ProviderFactory)
    name = factory.Sequence(lambda n: f"Site {n}")
    city = "Beijing"
    hub = "jingjinji"


def gpu_model(name: str = "A100-SXM4-40GB") -> GpuModel:
    """A catalogue model (the catalogue is loaded by a data migration)."""
    return GpuModel.objects.get(name=name)


class ServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Server
        skip_postgeneration_save = True

    site = factory.SubFactory(SiteFactory)
    provider = factory.SelfAttribute("site.provider")
    serial = factory.Sequence(lambda n: f"SRV-{n:05d}")
    gpu_model = factory.LazyFunction(gpu_model)
    card_count = 8

    @factory.post_generation
    def cards(self, create, extracted, **kwargs):
        if not create or extracted is False:
            return
        base = self.pk * 100
        Card.objects.bulk_create(
            [Card(server=self, slot=slot, uuid=card_uuid(base + slot)) for slot in range(self.card_count)]
        )


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    code = factory.Sequence(lambda n: f"cust-{n}")
    name = factory.Sequence(lambda n: f"Customer {n} 有限公司")
    tax_id = factory.Sequence(valid_uscc)
