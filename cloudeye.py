"""WSGI entry: `gunicorn cloudeye:app`, `FLASK_APP=cloudeye.py flask db upgrade`."""

from api import create_app

app = create_app()
