from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Account",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("email", models.CharField(max_length=200)),
            ],
        ),
        # 20,000 accounts, loaded with the table (a table created in the same transaction is
        # nobody else's yet, so this is not judged).
        migrations.RunSQL(
            "INSERT INTO crm_account (email) SELECT 'User' || g || '@Example.com' FROM generate_series(1, 20000) g; "
            "ANALYZE crm_account",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
