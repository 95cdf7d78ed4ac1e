"""A minimal Django project that runs migrations against the migrate_guard test cluster."""
import os

SECRET_KEY = "migrate-guard-integration-test"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django.contrib.postgres", "shop", "crm"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["MG_DJANGO_DB"],
        "USER": "postgres",
        "HOST": os.environ["PGHOST"],
        "PORT": os.environ["PGPORT"],
    }
}
# Which migration set to run: shop.migrations_unsafe or shop.migrations_safe.
MIGRATION_MODULES = {
    "shop": os.environ.get("SHOP_MIGRATIONS", "shop.migrations_safe"),
    # crm.migrations_mixed (schema and data in one migration) or crm.migrations_split.
    "crm": os.environ.get("CRM_MIGRATIONS", "crm.migrations_split"),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
