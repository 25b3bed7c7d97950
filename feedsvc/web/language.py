"""The page language of a request (?lang=, the lang cookie, Accept-Language) and its translate helper."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, request

from feedsvc.config import Settings
from feedsvc.i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate, translate
from feedsvc.web.security import https_site


def init_app(app: Flask, settings: Settings) -> None:
    """Pick the language before each request, remember an explicit choice, give templates `_` and `lang`."""

    @app.before_request
    def choose_language() -> None:
        requested = request.args.get("lang") or request.cookies.get("lang")
        g.lang = negotiate(requested, request.accept_languages)

    secure = https_site(settings)  # as the session cookie: never sent over plain http by an https site

    @app.after_request
    def remember_language(response: Response) -> Response:
        chosen = request.args.get("lang")
        if chosen in LANGUAGES:
            response.set_cookie("lang", chosen, max_age=365 * 86400, samesite="Lax", httponly=True, secure=secure)
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


def page_language() -> str:
    """The language chosen for this request, marking the response as one that varies by language.

    Only responses that asked for it get ``Vary: Accept-Language, Cookie``: a feed is the same for
    every reader, and shared caches should keep one copy of it.
    """
    g.language_varies = True
    return g.get("lang", DEFAULT_LANGUAGE)


def t(text: str, **values: object) -> str:
    """`text` (Chinese source) in this request's language, {placeholders} filled."""
    return translate(text, page_language(), **values)
