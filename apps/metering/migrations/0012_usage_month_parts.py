"""Each month of the usage table in four parts by day (docs/partitions.md#month-parts).

Months made before this migration are one plain table each: every one is detached, renamed,
made again as a month table of four parts (``…_d01``, ``_d09``, ``_d17``, ``_d25``), its rows
copied over (ids and event rows unchanged), attached again, and the old table dropped
(``apps.metering.partitions.split_whole_months``). Months already in parts are left as they are,
so a database made from scratch (whose 0007 made them in parts) changes nothing. The reverse is a
no-op: the earlier migrations read and write month tables in parts alike.
"""

from django.db import migrations


def split_months(apps, schema_editor):
    from apps.metering.partitions import split_whole_months

    with schema_editor.connection.cursor() as cursor:
        split_whole_months(cursor)


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0011_usage_agent_card_index"),
    ]

    operations = [
        migrations.RunPython(split_months, migrations.RunPython.noop, elidable=False),
    ]
