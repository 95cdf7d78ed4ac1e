# Unsafe: a plain AddIndex runs CREATE INDEX inside the migration's transaction.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_load_customers")]
    operations = [
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["email"], name="customer_email_idx"),
        ),
    ]
