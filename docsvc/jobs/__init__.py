"""Background jobs: the Celery app, the transactional outbox and the tasks."""
