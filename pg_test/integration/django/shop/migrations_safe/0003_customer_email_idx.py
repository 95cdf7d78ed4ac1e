# Safe: CREATE INDEX CONCURRENTLY, in a non-atomic migration (it cannot run in a transaction).
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("shop", "0002_load_customers")]
    operations = [
        AddIndexConcurrently(
            model_name="customer",
            index=models.Index(fields=["email"], name="customer_email_idx"),
        ),
    ]
