"""The web shell: `create_app` wires settings, the database, the page language and the blueprints."""

from __future__ import annotations

from typing import Any

from flask import Flask

from feedsvc.config import Settings, load_settings


def create_app(settings: Settings | None = None, **config: Any) -> Flask:
    """The web app. `settings` default to feedsvc.toml plus the environment; `config` goes to app.config."""
    from feedsvc.web import (
        admin,
        admin_calendar,
        admin_charts,
        api,
        database,
        language,
        public,
        search,
        security,
        subscribe,
    )

    settings = settings or load_settings()
    app = Flask(__name__, template_folder=str(settings.templates_dir), static_folder=None)
    app.config.update(SECRET_KEY=settings.secret_key, FEEDSVC_SETTINGS=settings, **config)
    app.extensions["feedsvc.settings"] = settings
    database.init_app(app, settings)
    security.init_app(app, settings)
    language.init_app(app, settings)
    public.init_app(app, settings)
    subscribe.init_app(app, settings)
    api.init_app(app, settings)
    assert admin_calendar.bp is admin_charts.bp is admin.bp  # their routes and helpers are the admin's
    for blueprint in (public.bp, subscribe.bp, search.bp, admin.bp, api.bp):
        app.register_blueprint(blueprint)
    return app
