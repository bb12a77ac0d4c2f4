"""WSGI entry point for gunicorn: ``gunicorn ra.wsgi:app``."""

from ra import create_app

app = create_app()
