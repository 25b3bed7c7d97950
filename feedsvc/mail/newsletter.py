"""The newsletter email rendered: one inlined HTML and one plain-text rendition per (issue, section set). Pure.

Inlining CSS with premailer is the expensive step, so it runs once per distinct section choice, never per
subscriber. The rendered parts carry plain placeholders (`MANAGE_URL`, `UNSUBSCRIBE_URL`, `RECIPIENT`) that
premailer leaves alone (it URL-encodes ``{{ x }}`` inside href; these are letters and hyphens), and
`personalise` swaps in each recipient's values with `str.replace`. Making the message for one reader
(headers, bytes) is `feedsvc.mail.message`.

Nothing here imports Flask or the database: callers pass the `Issue`, the `Publication` and the links.
"""

from __future__ import annotations

import html as htmllib
import logging
import re
from collections.abc import Iterable
from dataclasses import replace
from email.headerregistry import Address
from functools import lru_cache
from pathlib import Path
from typing import Any

from premailer import Premailer

from feedsvc.config import Publication
from feedsvc.content.model import Issue
from feedsvc.i18n import DEFAULT_LANGUAGE, LANGUAGES, date_text
from feedsvc.mail.message import EmailError, Links, RenderedEmail, one_line, placeholder_values
from feedsvc.mail.templates import environment

__all__ = [
    "DEFAULT_TEMPLATES",
    "GMAIL_CLIP_BYTES",
    "EmptySelection",
    "inline_css",
    "personalise",
    "render",
    "render_source",
    "subject_for",
]

_PLACEHOLDER_PREFIX = "FEEDSVC-"
# Issue text that happens to contain a placeholder must not be filled in: its hyphen becomes a
# non-breaking hyphen (U+2011), which looks the same and matches nothing.
_DEFUSED_PREFIX = "FEEDSVC\u2011"

#: The repository's templates/ (the CLI and app pass settings.templates_dir instead).
DEFAULT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

#: Gmail clips a message whose HTML is larger than about 102 KB ("[Message clipped]").
GMAIL_CLIP_BYTES = 102 * 1024


class EmptySelection(EmailError):
    """None of the chosen sections is in this issue: there is nothing to send to this reader."""


# ------------------------------------------------------------------------------------------ rendering


def subject_for(issue: Issue) -> str:
    """``行业动态周报 第398期（2024年1月22日）``, or the issue's own subject (front matter) when it has one."""
    if issue.subject:
        return one_line(issue.subject)
    d = issue.date
    return one_line(f"{issue.title} 第{issue.number}期（{d.year}年{d.month}月{d.day}日）")


def render(
    issue: Issue,
    sections: Iterable[str] | str | None,
    publication: Publication,
    *,
    lang: str = DEFAULT_LANGUAGE,
    templates: Path | None = None,
) -> RenderedEmail:
    """Render and inline `issue` restricted to `sections` (slugs; "all" or None for every section).

    Results are cached per (issue, sections present in it, language, templates), so a send renders each
    distinct choice once. Unknown slugs raise `EmailError`; a choice that leaves nothing of this issue
    raises `EmptySelection`.
    """
    chosen = _selection(issue, sections, publication)
    _check_language(lang)
    folder = str((templates or DEFAULT_TEMPLATES).resolve())
    return _render_cached(issue, chosen, publication, lang, folder)


def inline_css(html: str) -> str:
    """Move the stylesheet rules of `html` into style attributes (premailer), offline and quietly.

    Styles marked ``data-premailer="ignore"`` (media queries, dark mode) stay in the head untouched.
    """
    return Premailer(
        html,
        base_url=None,  # no link rewriting: every URL in the template is absolute or a placeholder
        allow_network=False,  # never fetch a stylesheet
        disable_validation=True,  # cssutils validation is slow and only logs
        disable_link_rewrites=True,
        keep_style_tags=False,
        strip_important=False,
        remove_classes=False,  # the media queries select by class
        cssutils_logging_level=logging.CRITICAL,
    ).transform(pretty_print=True)


def personalise(rendered: RenderedEmail, recipient: str | Address, links: Links) -> RenderedEmail:
    """`rendered` with one recipient's address and links in place of the placeholders.

    Values are HTML-escaped for the HTML part and inserted as they are into the text part.
    """
    html, text = rendered.html, rendered.text
    for placeholder, value in placeholder_values(recipient, links):
        html = html.replace(placeholder, htmllib.escape(value, quote=True))
        text = text.replace(placeholder, value)
    return replace(rendered, html=html, text=text)


def _check_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise EmailError(f"unknown language {lang!r}; one of {', '.join(LANGUAGES)}")


# -------------------------------------------------------------------------------------------- helpers


def _selection(issue: Issue, sections: Iterable[str] | str | None, publication: Publication) -> tuple[str, ...]:
    """The chosen slugs present in `issue`, in issue order."""
    wanted, unknown = publication.choose_sections(sections)
    if unknown:
        raise EmailError(
            f"unknown section {', '.join(unknown)}; the sections are {', '.join(publication.slugs)} (or all)"
        )
    chosen = tuple(s.slug for s in issue.sections if s.slug in wanted and s.items)
    if not chosen:
        raise EmptySelection(
            f"issue {issue.number} has nothing in the sections {', '.join(sorted(wanted)) or '(none)'}"
        )
    return chosen


def render_source(
    issue: Issue,
    sections: Iterable[str] | str | None,
    publication: Publication,
    *,
    lang: str = DEFAULT_LANGUAGE,
    templates: Path | None = None,
) -> tuple[str, str]:
    """The HTML before inlining and the text part, uncached (for `render`, benchmarks and template work)."""
    chosen = _selection(issue, sections, publication)
    _check_language(lang)
    folder = str((templates or DEFAULT_TEMPLATES).resolve())
    return _source(issue, chosen, publication, lang, folder)


def _source(issue: Issue, chosen: tuple[str, ...], publication: Publication, lang: str, folder: str) -> tuple[str, str]:
    whole = _defuse_issue(issue)
    part = whole.only(chosen)
    env = environment(folder, lang)
    context = _context(part, whole, publication, lang)
    html = env.get_template("email/issue.html").render(context)
    text = _tidy_text(env.get_template("email/issue.txt").render(context))
    return html, text


@lru_cache(maxsize=128)  # 6 sections make 63 possible choices; every one fits
def _render_cached(
    issue: Issue, chosen: tuple[str, ...], publication: Publication, lang: str, folder: str
) -> RenderedEmail:
    html, text = _source(issue, chosen, publication, lang, folder)
    return RenderedEmail(
        subject=subject_for(issue),
        html=inline_css(html),
        text=text,
        number=issue.number,
        sections=chosen,
        lang=lang,
        archive_url=f"{publication.base_url}/issues/{issue.number}",
    )


render.cache_clear = _render_cached.cache_clear  # type: ignore[attr-defined]


def _context(part: Issue, whole: Issue, publication: Publication, lang: str) -> dict[str, Any]:
    english = lang == "en"
    names = {s.slug: publication.section_label(s.slug, lang) for s in publication.sections}
    names.update({s.slug: names.get(s.slug, s.name) for s in part.sections})
    included = [names[s.slug] for s in part.sections]
    summary = _summary(part, whole)
    name = publication.name_en if english and publication.name_en else publication.name
    return {
        "issue": part,
        "subject": subject_for(whole),
        "content_lang": publication.language,
        "chrome_lang": lang if lang != publication.language else "",
        "date_text": date_text(part.date, lang),
        "colon": ": " if english else "：",
        "summary": summary,
        "preheader": "；".join(summary) if summary else "",
        # Fills the inbox preview after the preheader so that it does not run on into the body text.
        "preheader_padding": "\u2007\u034f" * 60,  # figure space, combining grapheme joiner
        "section_names": names,
        "included_names": ("、" if not english else ", ").join(included),
        "publication_name": f"《{name}》" if not english else name,
        "archive_url": f"{publication.base_url}/issues/{part.number}",
        "colophon": [_colophon_line(line) for line in part.colophon],
        "postal_address": publication.postal_address,
    }


def _summary(part: Issue, whole: Issue) -> list[str]:
    """The highlights that belong to the included sections (a highlight naming no item is always kept)."""
    titles_in = {item.title for _, item in part.items}
    titles_all = {item.title for _, item in whole.items}
    kept = [line for line in part.summary if line in titles_in or line not in titles_all]
    return kept or [item.title for _, item in list(part.items)[:3]]


def _colophon_line(line: str) -> tuple[str, str]:
    """``编辑部：中国…`` as (label with its colon, rest), for a bold label."""
    match = re.match(r"^([^：:]{1,8}[：:])(.*)$", line)
    return (match.group(1), match.group(2)) if match else ("", line)


def _defuse(text: str) -> str:
    return text.replace(_PLACEHOLDER_PREFIX, _DEFUSED_PREFIX) if _PLACEHOLDER_PREFIX in text else text


def _defuse_issue(issue: Issue) -> Issue:
    """The issue with any placeholder-looking text made inert (it would otherwise be filled per recipient)."""
    haystack = [issue.title, issue.publisher, issue.subject or "", *issue.summary, *issue.colophon]
    haystack += [f"{s.name}{i.title}{i.html}{i.text}" for s, i in issue.items]
    if not any(_PLACEHOLDER_PREFIX in h for h in haystack):
        return issue
    sections = tuple(
        replace(
            s,
            name=_defuse(s.name),
            items=tuple(
                replace(i, title=_defuse(i.title), html=_defuse(i.html), text=_defuse(i.text)) for i in s.items
            ),
        )
        for s in issue.sections
    )
    return replace(
        issue,
        title=_defuse(issue.title),
        publisher=_defuse(issue.publisher),
        subject=_defuse(issue.subject) if issue.subject else issue.subject,
        summary=tuple(map(_defuse, issue.summary)),
        colophon=tuple(map(_defuse, issue.colophon)),
        sections=sections,
    )


def _tidy_text(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"
