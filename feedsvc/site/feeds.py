"""Issues in, feed documents out: Atom (feedgen) and JSON Feed 1.1 for every section, `all` and `issues`. Pure.

Identity and time never depend on the machine or the clock:

* an entry id is a tag URI (RFC 4151) made of the publication's *id authority* (not its base URL, so moving
  the site never changes an id), the issue date and number, the section slug and the item key:
  ``tag:feedsvc.example.org,2024-01-22:398/industry/a070ebf8b5``; a whole issue is ``…,2024-01-22:398``;
* ``published`` and ``updated`` are the issue date at 00:00 UTC; a feed's ``updated`` is its newest entry's,
  so a feed that a new issue does not touch stays byte for byte the same.

Entries are ordered newest issue first, items in issue order, and cut to ``publication.feed_limit``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from feedgen.feed import FeedGenerator

from feedsvc.config import Publication
from feedsvc.content.model import Issue, Item

ALL = "all"
ISSUES = "issues"
ATOM_TYPE = "application/atom+xml"
JSON_FEED_TYPE = "application/feed+json"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "feedsvc"

# Characters XML 1.0 cannot carry (the parser drops them too; an Issue built elsewhere may still hold them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Entry:
    """One feed entry: an item of an issue, or a whole issue."""

    id: str
    title: str
    url: str
    published: dt.datetime
    updated: dt.datetime
    html: str
    summary: str = ""
    category: str = ""  # the section slug (Atom term); empty for whole issues
    category_label: str = ""  # the section name as readers see it


@dataclass(frozen=True)
class Feed:
    """A feed before it is written as Atom or JSON: what it is called, where it lives, its entries."""

    name: str
    id: str
    title: str
    subtitle: str
    updated: dt.datetime
    entries: tuple[Entry, ...]


# ------------------------------------------------------------------------------------------- identity


def feed_names(publication: Publication) -> tuple[str, ...]:
    """Every feed's name, in the order pages list them: the sections, then `all`, then `issues`."""
    return (*publication.slugs, ALL, ISSUES)


def issue_time(issue: Issue) -> dt.datetime:
    """The moment an issue stands for: its date at 00:00 UTC."""
    return dt.datetime.combine(issue.date, dt.time(0), tzinfo=dt.UTC)


def issue_tag(publication: Publication, issue: Issue) -> str:
    """The tag URI of a whole issue: ``tag:<authority>,<date>:<number>``."""
    return f"tag:{publication.id_authority},{issue.date.isoformat()}:{issue.number}"


def entry_tag(publication: Publication, issue: Issue, slug: str, key: str) -> str:
    """The tag URI of one item; it never changes while authority, issue, section and key stay the same."""
    return f"{issue_tag(publication, issue)}/{slug}/{key}"


def feed_tag(publication: Publication, name: str) -> str:
    """The id of a feed itself: ``tag:<authority>,<id_since>:feeds/<name>``."""
    return f"tag:{publication.id_authority},{publication.id_since}:feeds/{name}"


def site_url(publication: Publication, path: str = "/") -> str:
    """An absolute URL on the public site."""
    return publication.base_url.rstrip("/") + path


def feed_path(name: str, extension: str = "atom") -> str:
    """The site path of a feed: ``/feeds/<name>.atom`` or ``.json``."""
    return f"/feeds/{name}.{extension}"


def issue_path(number: int, anchor: str = "") -> str:
    """The site path of an issue's web version, optionally to an anchor in it."""
    return f"/issues/{number}" + (f"#{anchor}" if anchor else "")


def feed_title(publication: Publication, name: str) -> str:
    """A feed's title: the publication and what the feed holds."""
    section = publication.section_by_slug(name)
    what = section.name if section else {ALL: "全部栏目", ISSUES: "整期"}.get(name, name)
    return f"{publication.name} · {what}"


# --------------------------------------------------------------------------------------------- feeds


def build_feeds(issues: Iterable[Issue], publication: Publication) -> tuple[Feed, ...]:
    """Every feed of the publication, in `feed_names` order, from issues in any order."""
    ordered = sorted(issues, key=lambda i: (i.date, i.number), reverse=True)
    item_entries = [
        (section.slug, _item_entry(publication, issue, section.slug, section.name, item))
        for issue in ordered
        for section, item in issue.items
    ]
    feeds = [
        _feed(
            publication,
            section.slug,
            f"{publication.name}{section.name}栏目的每一条动态。",
            [entry for slug, entry in item_entries if slug == section.slug],
        )
        for section in publication.sections
    ]
    feeds.append(_feed(publication, ALL, publication.description, [entry for _, entry in item_entries]))
    feeds.append(
        _feed(publication, ISSUES, f"{publication.name}每期全文。", [_issue_entry(publication, i) for i in ordered])
    )
    return tuple(feeds)


def render_feeds(issues: Iterable[Issue], publication: Publication) -> dict[str, bytes]:
    """Every feed file of the site: ``feeds/<name>.atom`` and ``feeds/<name>.json`` → bytes."""
    return feed_files(build_feeds(issues, publication), publication)


def feed_files(built: Iterable[Feed], publication: Publication) -> dict[str, bytes]:
    """Feeds already built, written as their files (Atom and JSON Feed)."""
    files: dict[str, bytes] = {}
    for feed in built:
        files[f"feeds/{feed.name}.atom"] = atom(feed, publication)
        files[f"feeds/{feed.name}.json"] = json_feed(feed, publication)
    return files


def _feed(publication: Publication, name: str, subtitle: str, entries: Sequence[Entry]) -> Feed:
    kept = tuple(entries[: max(publication.feed_limit, 0)])
    updated = max((e.updated for e in kept), default=_epoch(publication))
    return Feed(
        name=name,
        id=feed_tag(publication, name),
        title=feed_title(publication, name),
        subtitle=subtitle or publication.name,
        updated=updated,
        entries=kept,
    )


def _epoch(publication: Publication) -> dt.datetime:
    """`updated` of a feed with no entries: fixed (Jan 1 of id_since), never the clock."""
    year = re.match(r"\d{4}", publication.id_since)
    return dt.datetime(int(year.group(0)) if year else 2000, 1, 1, tzinfo=dt.UTC)


def _item_entry(publication: Publication, issue: Issue, slug: str, section_name: str, item: Item) -> Entry:
    when = issue_time(issue)
    return Entry(
        id=entry_tag(publication, issue, slug, item.key),
        title=xml_text(item.title),
        url=site_url(publication, issue_path(issue.number, item.key)),
        published=when,
        updated=when,
        html=xml_text(item.html),
        category=slug,
        category_label=section_name,
    )


def _issue_entry(publication: Publication, issue: Issue) -> Entry:
    when = issue_time(issue)
    return Entry(
        id=issue_tag(publication, issue),
        title=xml_text(issue_heading(issue)),
        url=site_url(publication, issue_path(issue.number)),
        published=when,
        updated=when,
        html=xml_text(issue_html(publication, issue)),
        summary=xml_text("；".join(issue.summary)),
    )


def issue_heading(issue: Issue) -> str:
    """How an issue is named in feeds and pages: its subject, else ``<title> 第 N 期``."""
    return issue.subject or f"{issue.title} 第 {issue.number} 期"


def issue_html(publication: Publication, issue: Issue) -> str:
    """The whole issue as one HTML fragment (the `issues` feed's content): summary, sections, items."""
    parts: list[str] = []
    if issue.summary:
        parts.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in issue.summary) + "</ul>")
    for section in issue.sections:
        parts.append(f"<h2>{html.escape(section.name)}</h2>")
        for item in section.items:
            link = html.escape(site_url(publication, issue_path(issue.number, item.key)), quote=True)
            parts.append(f'<h3><a href="{link}">{html.escape(item.title)}</a></h3>')
            parts.append(item.html)
    if issue.colophon:
        parts.append("<hr>" + "".join(f"<p>{html.escape(line)}</p>" for line in issue.colophon))
    return "\n".join(parts)


# -------------------------------------------------------------------------------------------- writers


def atom(feed: Feed, publication: Publication) -> bytes:
    """The feed as an Atom 1.0 document (UTF-8 bytes), entries in feed order."""
    fg = FeedGenerator()
    fg.id(feed.id)
    fg.title(xml_text(feed.title))
    fg.subtitle(xml_text(feed.subtitle))
    fg.updated(feed.updated)
    fg.author({"name": xml_text(publication.publisher), "uri": site_url(publication)})
    fg.language(publication.language)
    fg.generator(GENERATOR)
    fg.link(href=site_url(publication, feed_path(feed.name)), rel="self", type=ATOM_TYPE)
    # The one feed-level alternate is the web archive: readers such as newsboat take the last alternate
    # link as the feed's website, so the JSON Feed twin is announced by the pages' autodiscovery instead.
    fg.link(href=site_url(publication, "/issues/"), rel="alternate", type="text/html")
    if publication.websub_hub:
        fg.link(href=publication.websub_hub, rel="hub")
    for entry in feed.entries:
        fe = fg.add_entry(order="append")
        fe.id(entry.id)
        fe.title(xml_text(entry.title))
        fe.link(href=entry.url, rel="alternate", type="text/html")
        fe.published(entry.published)
        fe.updated(entry.updated)
        if entry.summary:
            fe.summary(xml_text(entry.summary))
        if entry.category:
            fe.category(term=entry.category, label=xml_text(entry.category_label))
        fe.content(xml_text(entry.html), type="html")
    return fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)


def json_feed(feed: Feed, publication: Publication) -> bytes:
    """The feed as a JSON Feed 1.1 document (UTF-8 bytes)."""
    document: dict[str, object] = {
        "version": JSON_FEED_VERSION,
        "title": feed.title,
        "home_page_url": site_url(publication, "/issues/"),
        "feed_url": site_url(publication, feed_path(feed.name, "json")),
        "description": feed.subtitle,
        "language": publication.language,
        "authors": [{"name": publication.publisher, "url": site_url(publication)}],
    }
    if publication.websub_hub:
        document["hubs"] = [{"type": "WebSub", "url": publication.websub_hub}]
    document["items"] = [_json_item(entry) for entry in feed.entries]
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _json_item(entry: Entry) -> dict[str, object]:
    item: dict[str, object] = {
        "id": entry.id,
        "url": entry.url,
        "title": entry.title,
        "content_html": entry.html,
        "date_published": entry.published.isoformat(),
        "date_modified": entry.updated.isoformat(),
    }
    if entry.summary:
        item["summary"] = entry.summary
    if entry.category_label:
        item["tags"] = [entry.category_label]
    return item


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 forbids."""
    return _NOT_XML.sub("", text)
