"""Settings of the shop example: two apps, SQLite for Django's own data, Redis for QTasks."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-only-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = ["shop", "mailer"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "shopsite.urls"

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# The QTasks app (shopsite/qtasks_app.py): the web process and the worker must agree on both.
QTASKS_APP_NAME = os.environ.get("QTASKS_APP_NAME", "shop")
QTASKS_BROKER_URL = os.environ.get("QTASKS_BROKER_URL", "redis://127.0.0.1:6379/0")
