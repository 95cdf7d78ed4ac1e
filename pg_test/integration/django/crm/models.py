from django.db import models


class Account(models.Model):
    email = models.CharField(max_length=200)
    normalized_email = models.CharField(max_length=200, null=True)
