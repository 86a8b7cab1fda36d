"""The mailer's tasks; ``autodiscover_tasks`` imports this module in the worker.

A reusable app does not know the project's QTasks app: ``shared_task`` registers the task in
every app of the process (the shop's, here).
"""

from qtasks import shared_task


@shared_task
def send_email(to: str, subject: str) -> str:
    """Send a mail (a real project would call its mail service here)."""
    return f"sent {subject!r} to {to}"
