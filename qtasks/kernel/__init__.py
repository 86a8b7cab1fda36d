"""The microkernel: sequences the task lifecycle and dispatches hooks; imports no builtin plugin."""
