"""The web shell: `create_app` wires settings, the database, the page language and the blueprints."""

from __future__ import annotations

from typing import Any

from flask import Flask

from feedsvc.config import Settings, load_settings


def create_app(settings: Settings | None = None, **config: Any) -> Flask:
    """The web app. `settings` default to feedsvc.toml plus the environment; `config` goes to app.config."""
    from feedsvc.web import (
        admin,
        admin_bounces,
        admin_calendar,
        admin_charts,
        admin_owner,
        api,
        auth,
        database,
        health,
        hooks,
        language,
        public,
        search,
        security,
        subscribe,
    )
    from feedsvc.web import metrics as metrics_page

    settings = settings or load_settings()
    app = Flask(__name__, template_folder=str(settings.templates_dir), static_folder=None)
    app.config.update(security.session_config(settings))
    app.config.update(SECRET_KEY=settings.secret_key, FEEDSVC_SETTINGS=settings, **config)
    app.extensions["feedsvc.settings"] = settings
    database.init_app(app, settings)
    security.init_app(app, settings)
    language.init_app(app, settings)
    public.init_app(app, settings)
    subscribe.init_app(app, settings)
    hooks.init_app(app, settings)
    health.init_app(app)
    metrics_page.init_app(app, settings)
    api.init_app(app, settings)
    # their routes are the admin's
    assert admin_calendar.bp is admin_charts.bp is admin_owner.bp is admin_bounces.bp is admin.bp
    blueprints = (public.bp, health.bp, subscribe.bp, search.bp, auth.bp, admin.bp, hooks.bp, metrics_page.bp, api.bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app
