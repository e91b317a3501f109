"""Celery entry point: ``celery -A docsvc.jobs.worker worker`` (settings from the environment)."""

from docsvc.jobs.celery_app import make_celery
from docsvc.settings import get_settings

app = make_celery(get_settings())
