"""The archive pages: ``issues/index*.html`` and ``issues/<n>*.html`` in every UI language, rendered with plain
Jinja from the publisher's templates folder, and the template helpers the web app shares. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from feedsvc.config import Publication
from feedsvc.content.model import Issue
from feedsvc.content.reader import newest_first
from feedsvc.i18n import LANGUAGES, date_text, translate
from feedsvc.site import feeds
from feedsvc.site.writer import SiteError


def page_name(base: str, lang: str) -> str:
    """The file of a page in a language: ``issues/398.html`` (zh-CN), ``issues/398.en.html``."""
    return f"{base}.html" if lang == LANGUAGES[0] else f"{base}.{lang.split('-')[0]}.html"


def feed_listing(publication: Publication, built: Sequence[feeds.Feed]) -> list[dict[str, Any]]:
    """What a page needs to list every feed: name, title, paths, entry count."""
    counts = {feed.name: len(feed.entries) for feed in built}
    return [
        {
            "name": name,
            "title": feeds.feed_title(publication, name),
            "atom": feeds.feed_path(name, "atom"),
            "json": feeds.feed_path(name, "json"),
            "url": feeds.site_url(publication, feeds.feed_path(name, "atom")),
            "json_url": feeds.site_url(publication, feeds.feed_path(name, "json")),
            "entries": counts[name],
        }
        for name in feeds.feed_names(publication)
    ]


def template_environment(templates_dir: Path) -> jinja2.Environment:
    """Plain Jinja over the publisher's templates folder, HTML escaped by default."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    install_template_helpers(env)
    return env


def install_template_helpers(env: jinja2.Environment) -> None:
    """Filters the page templates use; the web app installs the same ones on Flask's environment."""
    env.filters["date_text"] = date_text


def render_pages(
    issues: Sequence[Issue], publication: Publication, templates_dir: Path, listing: Sequence[Mapping[str, Any]]
) -> dict[str, bytes]:
    """The archive pages, in every UI language: ``issues/index*.html`` and ``issues/<n>*.html``."""
    env = template_environment(templates_dir)
    ordered = newest_first(issues)
    files: dict[str, bytes] = {}
    for lang in LANGUAGES:
        common = {
            "_": lambda text, _lang=lang, **values: translate(text, _lang, **values),
            "lang": lang,
            "publication": publication,
            "languages": LANGUAGES,
            "feeds": listing,
            "section_label": lambda slug, _lang=lang: publication.section_label(slug, _lang),
            "issue_heading": feeds.issue_heading,
        }
        files[page_name("issues/index", lang)] = _render(env, "web/archive.html", issues=ordered, **common)
        for position, issue in enumerate(ordered):
            previous = ordered[position + 1] if position + 1 < len(ordered) else None
            files[page_name(f"issues/{issue.number}", lang)] = _render(
                env, "web/issue.html", issue=issue, previous=previous, **common
            )
    return files


def _render(env: jinja2.Environment, template: str, **context: Any) -> bytes:
    """Render one page; a template mistake becomes a SiteError naming the template (and line, when known)."""
    try:
        return env.get_template(template).render(**context).encode("utf-8")
    except jinja2.TemplateSyntaxError as exc:
        raise SiteError(f"template {exc.filename or exc.name}:{exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise SiteError(f"template {template}: {exc}") from exc
