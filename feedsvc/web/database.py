"""The app's one `Database` (as flaskr's db.init_app): attached by create_app, reached by `get_db()`."""

from __future__ import annotations

from flask import Flask, current_app

from feedsvc.config import Settings
from feedsvc.db.engine import Database

EXTENSION = "feedsvc.db"


def init_app(app: Flask, settings: Settings) -> None:
    """Open the database of `settings` for this app (a test may have attached its own already)."""
    app.extensions.setdefault(EXTENSION, Database(settings.database_url))


def get_db() -> Database:
    """The database of the current app."""
    return current_app.extensions[EXTENSION]


def get_settings() -> Settings:
    """The settings of the current app."""
    return current_app.extensions["feedsvc.settings"]
