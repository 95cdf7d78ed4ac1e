from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "INSERT INTO shop_customer (email, plan) "
            "SELECT 'user' || g || '@example.com', 'free' FROM generate_series(1, 5000) g",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
