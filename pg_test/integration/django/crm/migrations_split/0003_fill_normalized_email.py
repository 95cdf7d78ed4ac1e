# The data change in a migration of its own, outside a transaction (atomic = False), in batches
# that commit one by one: the call the guard's hint gives.
from django.db import migrations


def fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "CALL migrate_guard.backfill('crm_account', 'normalized_email = lower(email)', "
            "'normalized_email IS DISTINCT FROM lower(email)', batch_size => 5000)"
        )


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("crm", "0002_normalized_email")]
    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
