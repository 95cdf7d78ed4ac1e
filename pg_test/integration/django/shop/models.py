from django.db import models


class Customer(models.Model):
    email = models.CharField(max_length=200)
    plan = models.CharField(max_length=20, null=True)

    class Meta:
        indexes = [models.Index(fields=["email"], name="customer_email_idx")]
