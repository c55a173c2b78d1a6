"""Celery tasks: thin wrappers that receive ids and call services."""
