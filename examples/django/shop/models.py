"""The shop's one model."""

from django.db import models


class Order(models.Model):
    """An order; ``confirm_order`` sets its status to ``confirmed``."""

    item = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField()
    email = models.EmailField()
    status = models.CharField(max_length=20, default="new")
