"""The shop's QTasks app; the worker serves it: ``python -m qtasks -A shopsite.qtasks_app:app run``."""

import os

import django
from django.apps import apps
from django.conf import settings

from qtasks import QueueTasks
from qtasks.contrib.django import autodiscover_tasks

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")
if not apps.ready:  # the worker process: Django is not set up yet (manage.py has done it for the web)
    django.setup()

app = QueueTasks(name=settings.QTASKS_APP_NAME, broker_url=settings.QTASKS_BROKER_URL)

# Imports shop/tasks.py and mailer/tasks.py; their @app.task functions register with `app`.
autodiscover_tasks(app)
