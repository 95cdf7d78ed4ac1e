# The common way to write it: the new field and the code that fills it in one migration, which
# Django runs in one transaction. The ALTER TABLE's ACCESS EXCLUSIVE lock would be held while
# every row is updated.
from django.db import migrations, models
from django.db.models.functions import Lower


def fill(apps, schema_editor):
    Account = apps.get_model("crm", "Account")
    Account.objects.update(normalized_email=Lower("email"))


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]
    operations = [
        migrations.AddField("account", "normalized_email", models.CharField(max_length=200, null=True)),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
