"""The web shell: one blueprint per module (public pages, subscriptions, admin), registered by create_app."""

from __future__ import annotations

from flask import g

from feedsvc.i18n import DEFAULT_LANGUAGE, translate


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
