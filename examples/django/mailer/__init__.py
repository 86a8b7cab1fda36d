"""The mailer app: the task that sends mail."""
