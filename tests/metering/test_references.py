"""Usage's references (migration 0004): every written row names hardware of its own provider, and
providers, servers and cards with usage can be neither deleted nor moved to another owner — also
for writers that bypass the services, and also under concurrency."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from apps.core.errors import DomainError
from apps.inventory.models import Card, Server
from apps.metering import services
from apps.metering.models import UsageRecord
from apps.providers.models import Provider
from tests.factories.catalogue import ServerFactory
from tests.factories.metering import MINUTE, NOW, card_record

START = NOW - 10 * MINUTE

_INSERT = """
INSERT INTO metering_usagerecord (provider_id, event_id, content_hash, card_id, server_id, start_at,
    end_at, received_at, void_reason)
VALUES (%s, %s, 'h', %s, %s, %s, %s, %s, '')
"""


def insert_raw(*, provider_id, card_id=None, server_id=None, event_id="e-1") -> None:
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [provider_id, event_id, card_id, server_id, START, START + MINUTE, NOW])


def ingest_one(card) -> services.IngestResult:
    return services.usage_ingest(
        provider=card.server.provider, payload_records=[card_record(card.uuid, START)], received_at=NOW
    )


@pytest.mark.django_db
class TestWrites:
    def test_a_row_may_name_its_own_providers_card_and_server(self):
        server = ServerFactory()
        card = server.cards.first()
        insert_raw(provider_id=server.provider_id, card_id=card.pk, event_id="card")
        insert_raw(provider_id=server.provider_id, server_id=server.pk, event_id="server")
        assert UsageRecord.objects.filter(provider=server.provider).count() == 2

    def test_another_providers_card_is_refused(self):
        mine, theirs = ServerFactory(), ServerFactory()
        card = theirs.cards.first()
        with pytest.raises(IntegrityError, match=f"card {card.pk} is not hardware of that provider"):
            with transaction.atomic():
                insert_raw(provider_id=mine.provider_id, card_id=card.pk)
        assert UsageRecord.objects.count() == 0

    def test_another_providers_server_is_refused(self):
        mine, theirs = ServerFactory(), ServerFactory()
        with pytest.raises(IntegrityError, match=f"server {theirs.pk} is not hardware of that provider"):
            with transaction.atomic():
                insert_raw(provider_id=mine.provider_id, server_id=theirs.pk)

    def test_a_card_that_does_not_exist_is_refused(self):
        server = ServerFactory()
        with pytest.raises(IntegrityError) as info:
            with transaction.atomic():
                insert_raw(provider_id=server.provider_id, card_id=987654321)
        assert info.value.__cause__.sqlstate == "23503"

    def test_an_update_is_checked_too(self):
        mine, theirs = ServerFactory(), ServerFactory()
        ingest_one(mine.cards.first())
        with pytest.raises(IntegrityError, match="not hardware of that provider"):
            with transaction.atomic():
                UsageRecord.objects.update(card=theirs.cards.first())
        assert UsageRecord.objects.get().card.server == mine

    def test_one_bad_row_refuses_the_whole_statement(self):
        mine, theirs = ServerFactory(), ServerFactory()
        good, bad = mine.cards.first(), theirs.cards.first()
        with pytest.raises(IntegrityError):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    _INSERT.replace("VALUES (%s, %s, 'h', %s, %s, %s, %s, %s, '')", "")
                    + " SELECT %s, 'e-' || c, 'h', c, NULL, %s, %s, %s, '' FROM unnest(%s::bigint[]) c",
                    [mine.provider_id, START, START + MINUTE, NOW, [good.pk, bad.pk]],
                )
        assert UsageRecord.objects.count() == 0


@pytest.mark.django_db
class TestHardwareWithUsage:
    def test_a_card_with_usage_cannot_be_deleted(self):
        card = ServerFactory().cards.first()
        ingest_one(card)
        with pytest.raises(ProtectedError):  # the ORM says so first
            card.delete()
        with pytest.raises(IntegrityError, match=f"card {card.pk} has usage records: it cannot be deleted"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("DELETE FROM inventory_card WHERE id = %s", [card.pk])
        assert Card.objects.filter(pk=card.pk).exists()

    @pytest.mark.parametrize(
        ("table", "what", "id_of"),
        [
            ("inventory_server", "server", lambda server: server.pk),  # its cards have the usage
            ("providers_provider", "provider", lambda server: server.provider_id),
        ],
    )
    def test_a_server_or_provider_with_usage_cannot_be_deleted(self, table, what, id_of):
        server = ServerFactory()
        ingest_one(server.cards.first())
        with pytest.raises(IntegrityError, match=f"{what} {id_of(server)} has usage records"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table} WHERE id = %s", [id_of(server)])

    def test_a_server_with_usage_cannot_change_hands(self):
        server, other = ServerFactory(), ServerFactory()
        ingest_one(server.cards.first())
        with pytest.raises(IntegrityError, match="cannot be moved to another owner"):
            with transaction.atomic():
                Server.objects.filter(pk=server.pk).update(provider=other.provider)
        server.refresh_from_db()
        assert server.provider_id != other.provider_id

    def test_a_card_with_usage_cannot_move_to_another_server(self):
        server, other = ServerFactory(), ServerFactory()
        card = server.cards.get(slot=0)
        ingest_one(card)
        with pytest.raises(IntegrityError, match=f"card {card.pk} has usage records"):
            with transaction.atomic():
                Card.objects.filter(pk=card.pk).update(server=other, slot=99)

    def test_hardware_without_usage_is_deleted_and_edited_as_before(self):
        server, other = ServerFactory(), ServerFactory()
        ingest_one(other.cards.first())  # usage elsewhere does not matter
        Card.objects.filter(pk=server.cards.get(slot=6).pk).update(server=other, slot=99)
        server.cards.get(slot=7).delete()
        assert server.cards.count() == 6
        Server.objects.filter(pk=server.pk).update(provider=other.provider)
        Server.objects.filter(pk=server.pk).update(provider=server.provider)
        server.delete()
        server.site.delete()
        Provider.objects.get(pk=server.provider_id).delete()
        assert not Provider.objects.filter(pk=server.provider_id).exists()
        assert UsageRecord.objects.count() == 1


# -- concurrency: real transactions on two connections ----------------------------------------------
def wait_until_blocked(pid_box: list[int], timeout: float = 20.0) -> None:
    """Until the backend in ``pid_box`` waits on a lock (polled from this connection)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_box:
            with connection.cursor() as cursor:
                cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid_box[0]])
                row = cursor.fetchone()
            if row and row[0] == "Lock":
                return
        time.sleep(0.02)
    raise AssertionError("the other transaction never waited for the lock")


def in_thread(work, outcome: dict, pid_box: list[int]) -> threading.Thread:
    def run():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid_box.append(cursor.fetchone()[0])
            outcome["result"] = work()
        except Exception as exc:  # handed to the test thread, which asserts on it
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_delete_waits_for_a_batch_in_flight_and_then_sees_its_usage():
    card = ServerFactory().cards.first()
    release = threading.Event()
    stored = threading.Event()

    def batch():
        with transaction.atomic():
            result = ingest_one(card)
            stored.set()
            release.wait(20)
        return result

    batch_outcome: dict = {}
    batch_thread = in_thread(batch, batch_outcome, [])
    assert stored.wait(20)

    delete_outcome: dict = {}
    delete_pid: list[int] = []

    def delete():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM inventory_card WHERE id = %s", [card.pk])

    delete_thread = in_thread(delete, delete_outcome, delete_pid)
    wait_until_blocked(delete_pid)
    release.set()
    batch_thread.join(30)
    delete_thread.join(30)

    assert batch_outcome["result"].accepted == 1
    assert isinstance(delete_outcome.get("error"), IntegrityError)
    assert "has usage records" in str(delete_outcome["error"])
    assert Card.objects.filter(pk=card.pk).exists()
    assert UsageRecord.objects.filter(card=card).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_batch_waits_for_a_delete_in_flight_and_then_stores_nothing():
    card = ServerFactory().cards.first()
    release = threading.Event()
    deleted = threading.Event()

    def delete():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM inventory_card WHERE id = %s", [card.pk])
            deleted.set()
            release.wait(20)

    delete_outcome: dict = {}
    delete_thread = in_thread(delete, delete_outcome, [])
    assert deleted.wait(20)

    batch_outcome: dict = {}
    batch_pid: list[int] = []
    batch_thread = in_thread(lambda: ingest_one(card), batch_outcome, batch_pid)
    wait_until_blocked(batch_pid)
    release.set()
    delete_thread.join(30)
    batch_thread.join(30)

    assert "error" not in delete_outcome
    error = batch_outcome.get("error")
    assert isinstance(error, DomainError) and error.code == "retry_later" and error.http_status == 503
    assert not Card.objects.filter(pk=card.pk).exists()
    assert UsageRecord.objects.count() == 0
