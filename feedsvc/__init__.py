"""feedsvc: Markdown newsletter issues in; per-section feeds, a web archive and per-subscriber email out."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from flask import Flask, g, request

from feedsvc.config import Settings, load_settings
from feedsvc.i18n import LANGUAGES, negotiate, translate

__version__ = "0.1.0"


def create_app(settings: Settings | None = None, **config: Any) -> Flask:
    """The web app. `settings` default to feedsvc.toml plus the environment; `config` goes to app.config.

    Every module of feedsvc.web that has a `bp` blueprint is registered, and may have an
    `init_app(app)` for its own setup.
    """
    settings = settings or load_settings()
    app = Flask(__name__, template_folder=str(settings.templates_dir), static_folder=None)
    app.config.update(SECRET_KEY=settings.secret_key, FEEDSVC_SETTINGS=settings, **config)
    app.extensions["feedsvc.settings"] = settings
    _install_i18n(app, settings)

    from feedsvc import web

    for info in sorted(pkgutil.iter_modules(web.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{web.__name__}.{info.name}")
        if hasattr(module, "bp"):
            app.register_blueprint(module.bp)
        if hasattr(module, "init_app"):
            module.init_app(app)
    return app


def _install_i18n(app: Flask, settings: Settings) -> None:
    """Pick the page language per request (?lang=, then the lang cookie, then Accept-Language)."""
    from feedsvc.web import page_language

    @app.before_request
    def choose_language() -> None:
        requested = request.args.get("lang") or request.cookies.get("lang")
        g.lang = negotiate(requested, request.accept_languages)

    @app.after_request
    def remember_language(response):  # type: ignore[no-untyped-def]
        chosen = request.args.get("lang")
        if chosen in LANGUAGES:
            response.set_cookie("lang", chosen, max_age=365 * 86400, samesite="Lax", httponly=True)
        if g.get("language_varies"):
            response.vary.add("Accept-Language")
            response.vary.add("Cookie")
        return response

    @app.context_processor
    def inject() -> dict[str, Any]:
        lang = page_language()
        return {
            "_": lambda text, **values: translate(text, lang, **values),
            "lang": lang,
            "publication": settings.publication,
            "languages": LANGUAGES,
        }
