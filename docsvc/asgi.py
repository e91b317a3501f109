"""ASGI entry point for process managers (``uvicorn docsvc.asgi:app``); settings from the environment."""

from docsvc.app import create_app

app = create_app()
