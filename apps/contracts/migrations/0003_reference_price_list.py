from django.db import migrations


def forwards(apps, schema_editor):
    from apps.contracts.reference import load_reference_data

    load_reference_data(
        apps.get_model("contracts", "TaxCategory"),
        apps.get_model("contracts", "PriceList"),
        apps.get_model("contracts", "PriceListItem"),
        apps.get_model("inventory", "GpuModel"),
    )


class Migration(migrations.Migration):
    dependencies = [("contracts", "0002_initial"), ("inventory", "0003_gpu_catalogue")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
