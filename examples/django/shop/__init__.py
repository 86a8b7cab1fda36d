"""The shop app: orders, and the task that confirms them."""
