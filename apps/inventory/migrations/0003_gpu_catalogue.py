from django.db import migrations


def forwards(apps, schema_editor):
    from apps.inventory.catalogue import load_catalogue

    load_catalogue(apps.get_model("inventory", "GpuModel"))


class Migration(migrations.Migration):
    dependencies = [("inventory", "0002_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
