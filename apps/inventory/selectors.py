"""Reads over hardware: free capacity now, hardware no supply agreement covers (the operations home page)."""

from __future__ import annotations

import datetime

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from apps.providers.models import HubRegion, SupplyAgreement

from .models import Card, CardIncident, HardwareStatus, Server

OUT_OF_SERVICE = (HardwareStatus.MAINTENANCE, HardwareStatus.RETIRED)


def _allocations_model():
    # Allocations belong to contracts (a layer above); the reverse relation names them without an import.
    return Card._meta.get_field("allocations").related_model


def cards_free_now(queryset: QuerySet[Card] | None = None, *, now: datetime.datetime) -> QuerySet[Card]:
    """Cards in service that no firm allocation (of the card or of its whole server) holds at ``now``."""
    allocation = _allocations_model()
    busy = allocation.objects.filter(
        Q(card_id=OuterRef("pk")) | Q(card__isnull=True, server_id=OuterRef("server_id")),
        Q(end_at__isnull=True) | Q(end_at__gt=now),
        firm=True,
        start_at__lte=now,
    )
    queryset = Card.objects.all() if queryset is None else queryset
    return (
        queryset.exclude(status__in=OUT_OF_SERVICE)
        .exclude(server__status__in=OUT_OF_SERVICE)
        .filter(~Exists(busy))
    )


def free_capacity_by_hub(*, now: datetime.datetime) -> list[dict]:
    """Free cards now per hub and GPU model: ``{"hub", "hub_label", "gpu_model_id", "gpu_model", "cards"}``."""
    labels = dict(HubRegion.choices)
    rows = (
        cards_free_now(now=now)
        .order_by()
        .values("server__site__hub", "server__gpu_model_id", "server__gpu_model__name")
        .annotate(cards=Count("id"))
        .order_by("server__site__hub", "server__gpu_model__name")
    )
    return [
        {
            "hub": row["server__site__hub"],
            "hub_label": labels.get(row["server__site__hub"], row["server__site__hub"]),
            "gpu_model_id": row["server__gpu_model_id"],
            "gpu_model": row["server__gpu_model__name"],
            "cards": row["cards"],
        }
        for row in rows
    ]


def servers_without_supply(*, on: datetime.date) -> QuerySet[Server]:
    """Servers in service whose provider has no supply agreement for their GPU model valid on ``on``."""
    agreements = SupplyAgreement.objects.filter(
        Q(valid_to__isnull=True) | Q(valid_to__gte=on),
        provider_id=OuterRef("provider_id"),
        gpu_model_id=OuterRef("gpu_model_id"),
        valid_from__lte=on,
    )
    return Server.objects.exclude(status__in=OUT_OF_SERVICE).filter(~Exists(agreements))


def server_incident_counts(server: Server) -> tuple[int, int]:
    """``(incidents, ongoing)`` of the server's cards, in one query."""
    counts = CardIncident.objects.filter(card__server=server).aggregate(
        total=Count("pk"), ongoing=Count("pk", filter=Q(ended_at__isnull=True))
    )
    return counts["total"], counts["ongoing"]
