"""`/search?q=`: the archive search page (feedsvc.search), a plain GET form, no JavaScript."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from feedsvc.search.query import search
from feedsvc.search.tokens import MAX_QUERY_CHARS
from feedsvc.web.database import get_db, get_settings
from feedsvc.web.language import page_language

bp = Blueprint("search", __name__)


@bp.get("/search")
def search_page() -> str:
    """The search form and, for a query, one page of ranked, highlighted results."""
    publication = get_settings().publication
    query = request.args.get("q", "")[:MAX_QUERY_CHARS]
    section = request.args.get("section", "")
    if publication.section_by_slug(section) is None:
        section = ""
    page = request.args.get("page", 1, type=int) or 1
    with get_db().session(readonly=True) as session:
        results = search(session, query, section, min(max(page, 1), 10_000))
    lang = page_language()
    return render_template(
        "web/search.html",
        results=results,
        sections=[(s, publication.section_label(s, lang)) for s in publication.slugs],
        section_label=lambda slug: publication.section_label(slug, lang),
    )
