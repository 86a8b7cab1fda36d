"""The shop example's Django project: settings, URLs and the QTasks app."""
