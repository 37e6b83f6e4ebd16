"""Import and export of servers with their cards: resource API and the admin's two-step import."""

from __future__ import annotations

import csv
import io
import uuid
from types import SimpleNamespace

import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook

from apps.accounts import roles
from apps.inventory.models import Card, Server
from apps.inventory.resources import COLUMNS, ServerResource, import_error_lines
from tests.factories.catalogue import ProviderFactory, ServerFactory, SiteFactory

NAMESPACE = uuid.UUID("6f1c2f7e-2b0c-4a59-9a55-1f0c9b0f5e11")
CSV_FORMAT, XLSX_FORMAT = "0", "1"  # positions in ServerAdmin.import_formats

pytestmark = pytest.mark.django_db


def uuids_for(serial: str, count: int = 8) -> list[str]:
    return [f"GPU-{uuid.uuid5(NAMESPACE, f'{serial}/{slot}')}" for slot in range(count)]


def server_row(serial: str, **overrides) -> dict:
    row = {
        "serial": serial,
        "provider": "bj-idc",
        "site": "Yizhuang DC1",
        "gpu_model": "A100-SXM4-80GB",
        "status": "available",
        "card_count": 8,
        "card_uuids": ";".join(uuids_for(serial)),
    }
    row.update(overrides)
    return row


def good_rows() -> list[dict]:
    return [
        server_row("SRV-T-0001"),
        server_row("SRV-T-0002", status="maintenance"),
        server_row("SRV-T-0003"),
    ]


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_xlsx(rows: list[dict]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([row[c] for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def import_csv(text: str):
    dataset = tablib.Dataset().load(text, format="csv")
    return ServerResource().import_data(dataset, dry_run=False, raise_errors=False)


@pytest.fixture
def hardware():
    provider = ProviderFactory(code="bj-idc", name="Jingbei IDC")
    site = SiteFactory(provider=provider, name="Yizhuang DC1")
    other_site = SiteFactory(provider=ProviderFactory(code="cu-qinghai"), name="Xining AIDC", hub="other")
    return SimpleNamespace(provider=provider, site=site, other_site=other_site)


def assert_imported_good_rows():
    assert Server.objects.filter(serial__startswith="SRV-T-").count() == 3
    assert Card.objects.filter(server__serial__startswith="SRV-T-").count() == 24
    for row in good_rows():
        server = Server.objects.select_related("provider", "site", "gpu_model").get(serial=row["serial"])
        assert (server.provider.code, server.site.name, server.gpu_model.name) == (
            "bj-idc",
            "Yizhuang DC1",
            "A100-SXM4-80GB",
        )
        assert server.status == row["status"]
        assert list(server.cards.order_by("slot").values_list("slot", "uuid")) == list(
            enumerate(uuids_for(row["serial"]))
        )
        assert set(server.cards.values_list("status", flat=True)) == {row["status"]}


# -- resource API ------------------------------------------------------------------------------


def test_a_good_csv_creates_servers_with_their_cards_in_slot_order(hardware):
    result = import_csv(to_csv(good_rows()))

    assert import_error_lines(result) == []
    assert result.totals["new"] == 3
    assert_imported_good_rows()


def test_an_xlsx_file_imports_too(hardware):
    dataset = tablib.Dataset().load(to_xlsx(good_rows()), format="xlsx")
    result = ServerResource().import_data(dataset, dry_run=False, raise_errors=False)

    assert import_error_lines(result) == []
    assert_imported_good_rows()


def test_blank_rows_and_stray_spaces_are_ignored(hardware):
    rows = good_rows()
    rows[0]["serial"] = " SRV-T-0001 "
    text = to_csv(rows).replace("card_uuids", " Card_UUIDs ") + ",,,,,,\n\n"
    result = import_csv(text)

    assert import_error_lines(result) == []
    assert_imported_good_rows()


def test_uuids_are_stored_in_nvml_form(hardware):
    row = server_row("SRV-T-0001")
    row["card_uuids"] = ";".join(u.upper().replace("GPU-", "gpu-") for u in uuids_for("SRV-T-0001"))
    result = import_csv(to_csv([row]))

    assert import_error_lines(result) == []
    assert list(Card.objects.order_by("slot").values_list("uuid", flat=True)) == uuids_for("SRV-T-0001")


def test_a_dry_run_writes_nothing(hardware):
    dataset = tablib.Dataset().load(to_csv(good_rows()), format="csv")
    result = ServerResource().import_data(dataset, dry_run=True)

    assert result.totals["new"] == 3 and not result.has_validation_errors()
    assert Server.objects.count() == 0 and Card.objects.count() == 0


def _bad_uuid(rows):
    cards = rows[1]["card_uuids"].split(";")
    cards[2] = "GPU-1234"
    rows[1]["card_uuids"] = ";".join(cards)


def _uuid_of_row_1(rows):
    cards = rows[1]["card_uuids"].split(";")
    cards[5] = uuids_for("SRV-T-0001")[0]
    rows[1]["card_uuids"] = ";".join(cards)


def _uuid_of_existing_server(rows):
    cards = rows[1]["card_uuids"].split(";")
    cards[0] = Card.objects.get(server__serial="SRV-OLD-1", slot=4).uuid
    rows[1]["card_uuids"] = ";".join(cards)


BAD_ROWS = {
    "unknown gpu model": (
        lambda rows: rows[1].update(gpu_model="X100-80GB"),
        "Row 2, gpu_model: gpu_model “X100-80GB” is not in the GPU catalogue.",
    ),
    "unknown provider": (
        lambda rows: rows[1].update(provider="nobody"),
        "Row 2, provider: provider “nobody” does not exist",
    ),
    "unknown site": (
        lambda rows: rows[1].update(site="Atlantis"),
        "Row 2, site: site “Atlantis” does not exist.",
    ),
    "site of another provider": (
        lambda rows: rows[1].update(site="Xining AIDC"),
        "Row 2, site: site “Xining AIDC” belongs to provider cu-qinghai, not to “bj-idc”.",
    ),
    "bad uuid": (_bad_uuid, "Row 2, card_uuids: not an NVML UUID like GPU-xxxxxxxx"),
    "duplicate uuid in the file": (
        _uuid_of_row_1,
        f"Row 2, card_uuids: card UUID also on another row of the file: {uuids_for('SRV-T-0001')[0]} (rows 1, 2).",
    ),
    "uuid of another server": (
        _uuid_of_existing_server,
        "Row 2, card_uuids: card UUID already in use by another server: GPU-",
    ),
    "card count mismatch": (
        lambda rows: rows[1].update(card_count=7),
        "Row 2, card_count: card_count is 7 but card_uuids lists 8 UUID(s).",
    ),
    "duplicate serial": (
        lambda rows: rows[1].update(serial="SRV-T-0003"),
        "Row 2, serial: serial “SRV-T-0003” appears more than once in the file (rows 2, 3).",
    ),
    "unknown status": (
        lambda rows: rows[1].update(status="broken"),
        "Row 2, status: status “broken” is not one of available",
    ),
}


@pytest.fixture
def existing_server(hardware):
    server = ServerFactory(site=hardware.site, serial="SRV-OLD-1")
    return server


@pytest.mark.parametrize("case", BAD_ROWS, ids=list(BAD_ROWS))
def test_one_bad_row_imports_nothing_and_names_row_and_problem(hardware, existing_server, case):
    mutate, message = BAD_ROWS[case]
    rows = good_rows()
    mutate(rows)

    result = import_csv(to_csv(rows))

    assert Server.objects.count() == 1 and Card.objects.count() == 8  # only the pre-existing server
    lines = import_error_lines(result)
    assert any(line.startswith(message) for line in lines), lines


def test_every_bad_row_is_reported(hardware):
    rows = good_rows()
    rows[0]["gpu_model"] = "X100"
    rows[2]["card_count"] = 4
    lines = import_csv(to_csv(rows)).invalid_rows

    assert [invalid.number for invalid in lines] == [1, 3]
    assert Server.objects.count() == 0


def test_a_file_without_the_card_uuids_column_is_refused(hardware):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS[:-1], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(good_rows())

    result = import_csv(out.getvalue())

    assert any("lacks the column(s) card_uuids" in line for line in import_error_lines(result))
    assert Server.objects.count() == 0


def test_an_existing_server_cannot_get_other_cards_by_import(hardware, existing_server):
    row = server_row("SRV-OLD-1", gpu_model=existing_server.gpu_model.name)
    result = import_csv(to_csv([row]))

    assert any("already exists with other cards" in line for line in import_error_lines(result))
    assert set(existing_server.cards.values_list("uuid", flat=True)) != set(uuids_for("SRV-OLD-1"))


def test_export_then_import_round_trips(hardware):
    import_csv(to_csv(good_rows()))
    exported = ServerResource().export()
    assert exported.headers == list(COLUMNS)
    first = {k: str(v) for k, v in zip(exported.headers, exported[0], strict=True)}
    assert first == {k: str(v) for k, v in server_row("SRV-T-0001").items()}

    # The same file again: nothing to do, every row reported unchanged.
    again = ServerResource().import_data(tablib.Dataset().load(exported.csv, format="csv"), dry_run=False)
    assert again.totals["skip"] == 3 and not again.has_validation_errors()

    # Into an empty inventory: the same servers and cards come back.
    Card.objects.all().delete()
    Server.objects.all().delete()
    result = ServerResource().import_data(tablib.Dataset().load(exported.csv, format="csv"), dry_run=False)
    assert import_error_lines(result) == []
    assert_imported_good_rows()


def test_an_import_may_move_a_server_without_touching_its_cards(hardware):
    import_csv(to_csv(good_rows()))
    SiteFactory(provider=hardware.provider, name="Huailai AI Park")
    rows = good_rows()
    rows[0]["site"] = "Huailai AI Park"
    rows[0]["status"] = "retired"

    result = import_csv(to_csv(rows))

    assert import_error_lines(result) == []
    assert (result.totals["update"], result.totals["skip"]) == (1, 2)
    server = Server.objects.get(serial="SRV-T-0001")
    assert (server.site.name, server.status, server.cards.count()) == ("Huailai AI Park", "retired", 8)


# -- admin -------------------------------------------------------------------------------------


def admin_import(client, content, name: str, file_format: str):
    """Step 1 of the admin import: upload, dry run, preview (or the list of errors)."""
    return client.post(
        reverse("admin:inventory_server_import"),
        {"resource": "0", "format": file_format, "import_file": SimpleUploadedFile(name, content)},
    )


@pytest.fixture
def ops_client(client, operations_user):
    client.force_login(operations_user)
    return client


@pytest.mark.parametrize(
    ("name", "content", "file_format"),
    [
        ("servers.csv", to_csv(good_rows()).encode(), CSV_FORMAT),
        ("servers.xlsx", to_xlsx(good_rows()), XLSX_FORMAT),
    ],
    ids=["csv", "xlsx"],
)
def test_admin_import_previews_then_imports_on_confirm(hardware, ops_client, name, content, file_format):
    preview = admin_import(ops_client, content, name, file_format)

    assert preview.status_code == 200
    assert not preview.context["result"].has_validation_errors()
    assert Server.objects.count() == 0  # the preview is a dry run
    confirm = preview.context["confirm_form"]

    done = ops_client.post(reverse("admin:inventory_server_process_import"), confirm.initial)

    assert done.status_code == 302 and done.url == reverse("admin:inventory_server_changelist")
    assert_imported_good_rows()
    assert Server.history.filter(history_user__username="operations").count() == 3


def test_admin_import_lists_the_bad_rows_and_offers_no_confirm(hardware, ops_client):
    rows = good_rows()
    rows[1]["gpu_model"] = "X100-80GB"
    rows[2]["site"] = "Xining AIDC"

    response = admin_import(ops_client, to_csv(rows).encode(), "servers.csv", CSV_FORMAT)

    assert response.status_code == 200
    assert "confirm_form" not in response.context
    page = response.content.decode()
    assert "Some rows failed to validate" in page
    assert "gpu_model “X100-80GB” is not in the GPU catalogue." in page
    assert "site “Xining AIDC” belongs to provider cu-qinghai, not to “bj-idc”." in page
    assert [row.number for row in response.context["result"].invalid_rows] == [2, 3]
    assert Server.objects.count() == 0 and Card.objects.count() == 0


def test_admin_confirm_rolls_back_if_the_file_went_bad_meanwhile(hardware, ops_client):
    preview = admin_import(ops_client, to_csv(good_rows()).encode(), "servers.csv", CSV_FORMAT)
    # Between preview and confirm, someone registers a card with a UUID of row 3.
    other = ServerFactory(site=hardware.site, serial="SRV-RACE", cards=False)
    Card.objects.create(server=other, slot=0, uuid=uuids_for("SRV-T-0003")[7])

    response = ops_client.post(
        reverse("admin:inventory_server_process_import"), preview.context["confirm_form"].initial, follow=True
    )

    page = response.content.decode()
    assert "Nothing was imported" in page and "already in use by another server" in page
    assert not Server.objects.filter(serial__startswith="SRV-T-").exists()
    assert Card.objects.count() == 1


def test_only_operations_may_import(hardware, client, make_staff):
    client.force_login(make_staff(roles.ACCOUNT_MANAGER))

    assert client.get(reverse("admin:inventory_server_import")).status_code == 403
    assert client.get(reverse("admin:inventory_server_changelist")).status_code == 200

    client.force_login(make_staff(roles.OPERATIONS))
    page = client.get(reverse("admin:inventory_server_import"))
    assert page.status_code == 200
    assert "serial, provider, site, gpu_model, status, card_count, card_uuids" in page.content.decode()


def test_admin_export_writes_the_import_format(hardware, ops_client):
    import_csv(to_csv(good_rows()))
    fields = {f"serverresource_{column}": "on" for column in COLUMNS}

    response = ops_client.post(
        reverse("admin:inventory_server_export"), {"resource": "0", "format": CSV_FORMAT, **fields}
    )

    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    assert text.splitlines()[0] == ",".join(COLUMNS)
    exported = list(csv.DictReader(io.StringIO(text)))
    assert [row["serial"] for row in exported] == ["SRV-T-0001", "SRV-T-0002", "SRV-T-0003"]
    assert exported[0]["card_uuids"] == ";".join(uuids_for("SRV-T-0001"))
