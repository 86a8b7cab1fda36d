"""The shop's views: an order is saved and its confirmation enqueued in one transaction."""

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET, require_POST

from qtasks.contrib.django import enqueue_on_commit
from shop.models import Order
from shop.tasks import confirm_order


@require_POST
def place_order(request: HttpRequest) -> JsonResponse:
    """Save the order; the worker confirms it once the transaction has committed."""
    with transaction.atomic():
        order = Order.objects.create(item=request.POST["item"], quantity=int(request.POST["quantity"]), email=request.POST["email"])
        pending = enqueue_on_commit(confirm_order, order.pk)
    # The block has committed, so the task is enqueued and its record is known.
    return JsonResponse({"order": order.pk, "task": str(pending.task.uuid)}, status=201)


@require_GET
def order_status(request: HttpRequest, order_id: int) -> JsonResponse:
    """The order as stored."""
    order = get_object_or_404(Order, pk=order_id)
    return JsonResponse({"order": order.pk, "item": order.item, "quantity": order.quantity, "status": order.status})
