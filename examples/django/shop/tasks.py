"""The shop's tasks; ``autodiscover_tasks`` imports this module in the worker."""

from mailer.tasks import send_email
from shop.models import Order
from shopsite.qtasks_app import app


@app.task
def confirm_order(order_id: int) -> dict[str, str]:
    """Mark the order confirmed (the view enqueued this after its commit) and mail the buyer."""
    order = Order.objects.get(pk=order_id)
    order.status = "confirmed"
    order.save(update_fields=["status"])
    email = send_email.add_task(order.email, f"Order {order.pk}: {order.quantity} x {order.item}")
    return {"order": f"{order.pk} confirmed", "email_task": str(email.uuid)}
