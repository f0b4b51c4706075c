"""The Celery app: configured from Django settings (CELERY_*), tasks found in each app's tasks.py.

Start a worker with: .venv/bin/celery -A config worker -l info   (needs REDIS_URL; without it
tasks run in-process, CELERY_TASK_ALWAYS_EAGER).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
