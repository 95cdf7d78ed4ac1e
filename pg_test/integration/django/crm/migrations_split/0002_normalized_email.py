# The schema change on its own: it commits at once.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]
    operations = [
        migrations.AddField("account", "normalized_email", models.CharField(max_length=200, null=True)),
    ]
