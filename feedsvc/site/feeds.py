"""Issues in, feed documents out: Atom 1.0 and JSON Feed 1.1 for every section, `all` and `issues`. Pure.

Identity and time never depend on the machine, and on the clock only for corrections:

* an entry id is a tag URI (RFC 4151) made of the publication's *id authority* (not its base URL, so moving
  the site never changes an id), the issue date and number, the section slug and the item key:
  ``tag:feedsvc.example.org,2024-01-22:398/industry/a070ebf8b5``; a whole issue is ``…,2024-01-22:398``;
* every entry has its own instant, so that no two entries of a feed share an ``updated`` (the W3C Feed
  Validator's warning): an issue stands for noon of its date in the publication's time zone, and its n-th
  item (0-based, in issue order, across sections) for n seconds before noon. Readers that sort by date
  newest first show an issue's items in issue order, and the date they show is the issue's date there
  (noon leaves ±12 hours before another day begins). A second issue on the same date is an hour later;
* ``updated`` is ``published`` until the entry is corrected (see feedsvc.site.manifest); a document's
  ``updated`` is its newest entry's, so a feed that a new issue does not touch stays byte for byte the same.

Every feed keeps its whole history as RFC 5005 archives (feedsvc.site.archives): the subscription document
holds the newest ``publication.feed_limit`` entries. Entries stand alone in a reader: absolute links, an
``xml:lang``, an author and a plain-text summary each.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from feedsvc.config import Publication
from feedsvc.content.model import Issue, Item
from feedsvc.site import archives, manifest

ALL = "all"
ISSUES = "issues"
ATOM_TYPE = "application/atom+xml"
JSON_FEED_TYPE = "application/feed+json"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_NS = "http://www.w3.org/2005/Atom"
FH_NS = "http://purl.org/syndication/history/1.0"
FH_ARCHIVE = f"{{{FH_NS}}}archive"
EXTENSION = "feedsvc"  # the name feedgen gives our extension on the generator and each entry
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
GENERATOR = "feedsvc"
ISSUE_HOUR = 12  # an issue stands for noon of its date in the publication's time zone

# Characters XML 1.0 cannot carry (the parser drops them too; an Issue built elsewhere may still hold them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SENTENCE = re.compile(r"[^。！？!?]+(?:[。！？!?]+[”」』）)]?|$)|[。！？!?]+")
_LINK_ATTRIBUTE = re.compile(r'(\s(?:href|src)=")([^"]*)"')


@dataclass(frozen=True)
class Entry:
    """One feed entry: an item of an issue, or a whole issue."""

    id: str
    title: str
    url: str
    published: dt.datetime
    updated: dt.datetime
    html: str
    digest: str = ""  # of what readers see, for the manifest (corrections)
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


def issue_time(issue: Issue, publication: Publication, rank: int = 0) -> dt.datetime:
    """The moment an issue stands for: noon of its date in the publication's time zone (and `rank` hours
    later for the rank-th other issue of that date)."""
    noon = dt.datetime.combine(issue.date, dt.time(ISSUE_HOUR), tzinfo=publication.zone)
    return noon + dt.timedelta(hours=rank)


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
    return f"{archives.subscription_stem(name)}.{extension}"


def issue_path(number: int, anchor: str = "") -> str:
    """The site path of an issue's web version, optionally to an anchor in it."""
    return f"/issues/{number}" + (f"#{anchor}" if anchor else "")


def feed_title(publication: Publication, name: str) -> str:
    """A feed's title: the publication and what the feed holds."""
    section = publication.section_by_slug(name)
    what = section.name if section else {ALL: "全部栏目", ISSUES: "整期"}.get(name, name)
    return f"{publication.name} · {what}"


# --------------------------------------------------------------------------------------------- feeds


def build_feeds(
    issues: Iterable[Issue],
    publication: Publication,
    history: manifest.History | None = None,
    now: dt.datetime | None = None,
) -> tuple[Feed, ...]:
    """Every feed of the publication with its whole history, in `feed_names` order, from issues in any order.

    `history` (the previous build's manifest) keeps each known entry's instants; an entry corrected since
    gets `updated` = `now` (the clock if None; only read when something was corrected).
    """
    ordered = sorted(issues, key=lambda i: (i.date, i.number), reverse=True)
    ranks = _same_day_ranks(ordered)
    items = [
        (section.slug, _item_entry(publication, issue, ranks[issue.number], position, section.slug, section.name, item))
        for issue in ordered
        for position, (section, item) in enumerate(issue.items)
    ]
    whole = [_issue_entry(publication, issue, ranks[issue.number]) for issue in ordered]
    when, known = now or dt.datetime.now(dt.UTC), history or {}
    # Items and whole issues never share a feed, so each kind only needs instants unique among its own.
    stamped = manifest.restamp([entry for _, entry in items], known, when, publication.zone)
    item_entries = [(slug, entry) for (slug, _), entry in zip(items, stamped, strict=True)]
    whole = manifest.restamp(whole, known, when, publication.zone)
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
    feeds.append(_feed(publication, ISSUES, f"{publication.name}每期全文。", whole))
    return tuple(feeds)


def render_feeds(
    issues: Iterable[Issue],
    publication: Publication,
    history: manifest.History | None = None,
    now: dt.datetime | None = None,
) -> dict[str, bytes]:
    """Every feed file of the site (subscription and archive documents, Atom and JSON Feed) → bytes."""
    return feed_files(build_feeds(issues, publication, history, now), publication)


def feed_files(built: Iterable[Feed], publication: Publication) -> dict[str, bytes]:
    """Feeds already built, written as their files: every page of each, in Atom and in JSON Feed."""
    files: dict[str, bytes] = {}
    for feed in built:
        for page in archives.paginate(feed.name, feed.entries, publication.feed_limit):
            files[page.path("atom").lstrip("/")] = atom(feed, page, publication)
            files[page.path("json").lstrip("/")] = json_feed(feed, page, publication)
    return files


def manifest_file(built: Iterable[Feed]) -> bytes:
    """The manifest of these feeds (every entry once), for the next build's `history`."""
    entries = {entry.id: entry for feed in built for entry in feed.entries}
    return manifest.dump(entries.values())


def _feed(publication: Publication, name: str, subtitle: str, entries: Sequence[Entry]) -> Feed:
    return Feed(
        name=name,
        id=feed_tag(publication, name),
        title=feed_title(publication, name),
        subtitle=subtitle or publication.name,
        updated=_newest(entries, publication),
        entries=tuple(entries),
    )


def _newest(entries: Iterable[Entry], publication: Publication) -> dt.datetime:
    """A document's `updated`: its newest entry's; fixed (Jan 1 of id_since) without entries, never the clock."""
    newest = max((e.updated for e in entries), default=None)
    if newest is not None:
        return newest
    year = re.match(r"\d{4}", publication.id_since)
    return dt.datetime(int(year.group(0)) if year else 2000, 1, 1, tzinfo=publication.zone)


def _same_day_ranks(ordered: Iterable[Issue]) -> dict[int, int]:
    """Issue number → how many issues of the same date have a lower number (0 for the usual one a day)."""
    by_date: dict[dt.date, list[int]] = {}
    for issue in ordered:
        by_date.setdefault(issue.date, []).append(issue.number)
    return {number: rank for numbers in by_date.values() for rank, number in enumerate(sorted(numbers))}


def _item_entry(
    publication: Publication, issue: Issue, rank: int, position: int, slug: str, section_name: str, item: Item
) -> Entry:
    when = issue_time(issue, publication, rank) - dt.timedelta(seconds=position)
    page = site_url(publication, issue_path(issue.number))
    body = absolute_links(xml_text(item.html), page)
    return Entry(
        id=entry_tag(publication, issue, slug, item.key),
        title=xml_text(item.title),
        url=site_url(publication, issue_path(issue.number, item.key)),
        published=when,
        updated=when,
        html=body,
        digest=manifest.digest(item.title, item.html),
        summary=xml_text(first_sentences(item.text)),
        category=slug,
        category_label=section_name,
    )


def _issue_entry(publication: Publication, issue: Issue, rank: int) -> Entry:
    when = issue_time(issue, publication, rank)
    parts = [issue_heading(issue), *issue.summary, *issue.colophon]
    parts += [f"{s.name}/{i.key}/{i.title}/{i.html}" for s, i in issue.items]
    page = site_url(publication, issue_path(issue.number))
    return Entry(
        id=issue_tag(publication, issue),
        title=xml_text(issue_heading(issue)),
        url=page,
        published=when,
        updated=when,
        html=absolute_links(xml_text(issue_html(publication, issue)), page),
        digest=manifest.digest(*parts),
        summary=xml_text("；".join(issue.summary)),
    )


def first_sentences(text: str, enough: int = 60, most: int = 200) -> str:
    """A plain-text summary: the first sentence, and the second too if the first is shorter than `enough`;
    at most `most` characters (cut with an ellipsis)."""
    plain = " ".join(text.split())
    sentences = _SENTENCE.findall(plain)
    summary = sentences[0] if sentences else ""
    if len(sentences) > 1 and len(summary) < enough:
        summary += sentences[1]
    summary = summary.strip()
    return summary if len(summary) <= most else summary[: most - 1].rstrip() + "…"


def absolute_links(fragment: str, page_url: str) -> str:
    """`fragment` with every href and src made absolute against `page_url`, so an entry stands alone."""

    def absolute(match: re.Match[str]) -> str:
        target = urljoin(page_url, html.unescape(match.group(2)))
        return f'{match.group(1)}{html.escape(target, quote=True)}"'

    return _LINK_ATTRIBUTE.sub(absolute, fragment)


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


def atom(feed: Feed, page: archives.Page[Entry], publication: Publication) -> bytes:
    """One page of the feed as an Atom 1.0 document (UTF-8 bytes), entries newest first, written by feedgen."""
    generator = FeedGenerator()
    generator.register_extension(EXTENSION, _FeedExtension, _EntryExtension, atom=True, rss=False)
    generator.feedsvc.archive = page.archive
    generator.id(feed.id)
    generator.title(xml_text(feed.title))
    generator.subtitle(xml_text(feed.subtitle))
    generator.updated(_newest(page.entries, publication))  # never feedgen's clock
    generator.author(name=xml_text(publication.publisher), uri=site_url(publication))
    generator.generator(GENERATOR)
    generator.language(publication.language)
    generator.link(rel="self", href=site_url(publication, page.path("atom")), type=ATOM_TYPE)
    # The one feed-level alternate is the web archive: readers such as newsboat take the last alternate
    # link as the feed's website, so the JSON Feed twin is announced by the pages' autodiscovery instead.
    generator.link(rel="alternate", href=site_url(publication, "/issues/"), type="text/html")
    for hub in publication.hubs:
        generator.link(rel="hub", href=hub)
    if page.archive:
        generator.link(rel="current", href=site_url(publication, feed_path(feed.name)), type=ATOM_TYPE)
    if page.previous:
        generator.link(rel="prev-archive", href=site_url(publication, page.previous + ".atom"), type=ATOM_TYPE)
    for entry in page.entries:
        _atom_entry(generator.add_entry(order="append"), entry, publication)  # feedgen prepends by default
    return generator.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)


def _atom_entry(element: FeedEntry, entry: Entry, publication: Publication) -> None:
    element.feedsvc.language = publication.language
    element.id(entry.id)
    element.title(entry.title)
    element.link(rel="alternate", href=entry.url, type="text/html")
    element.published(entry.published)
    element.updated(entry.updated)  # never feedgen's clock
    element.author(name=xml_text(publication.publisher))
    if entry.summary:
        element.summary(entry.summary)
    if entry.category:
        element.category(term=entry.category, label=xml_text(entry.category_label))
    element.content(entry.html, type="html")


# feedgen writes Atom's elements in its own order and `href` before `rel`; the extension puts them in ours
# (the order main has always written, so no document changes bytes), adds what feedgen lacks (fh:archive,
# xml:lang on entries) and declares the namespaces on the root itself (Atom first, then fh on archives).
_FEED_ORDER = ("id", "title", "subtitle", "updated", "author", "generator", "link", FH_ARCHIVE, "link:prev-archive")
_ENTRY_ORDER = ("id", "title", "link", "published", "updated", "author", "summary", "category", "content")
_LINK_ATTRIBUTES = ("rel", "href", "type")


class _FeedExtension(BaseExtension):
    """feedgen extension of the feed element: namespaces, fh:archive (RFC 5005) and our element order."""

    def __init__(self) -> None:
        self.archive = False

    def extend_ns(self) -> dict[str | None, str]:
        return {None: ATOM_NS, "fh": FH_NS} if self.archive else {None: ATOM_NS}

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        del feed.attrib["xmlns"]  # feedgen's literal attribute; the nsmap above declares it
        if self.archive:
            etree.SubElement(feed, FH_ARCHIVE)
        _put_in_order(feed, _FEED_ORDER)
        return feed


class _EntryExtension(BaseEntryExtension):
    """feedgen extension of each entry element: xml:lang and our element order."""

    def __init__(self) -> None:
        self.language = ""

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        entry.set(XML_LANG, self.language)
        for link in entry.iterchildren("link"):  # feedgen 1.0 writes an entry link's href and drops the rest
            link.set("rel", "alternate")
            link.set("type", "text/html")
        _put_in_order(entry, _ENTRY_ORDER)
        return entry


def _put_in_order(parent: etree._Element, order: Sequence[str]) -> None:
    """Children of `parent` sorted by `order` (a link by ``link:<rel>`` if listed, else ``link``), stably;
    link attributes as ``rel, href, type``."""

    def rank(child: etree._Element) -> int:
        rel = f"link:{child.get('rel')}"
        return order.index(rel if child.tag == "link" and rel in order else child.tag)

    for link in parent.iterchildren("link"):
        attributes = [(name, link.get(name)) for name in _LINK_ATTRIBUTES if link.get(name) is not None]
        link.attrib.clear()
        for name, value in attributes:
            link.set(name, value)
    parent[:] = sorted(parent, key=rank)


def json_feed(feed: Feed, page: archives.Page[Entry], publication: Publication) -> bytes:
    """One page of the feed as a JSON Feed 1.1 document (UTF-8 bytes); `next_url` leads to older entries."""
    document: dict[str, object] = {
        "version": JSON_FEED_VERSION,
        "title": feed.title,
        "home_page_url": site_url(publication, "/issues/"),
        "feed_url": site_url(publication, feed_path(feed.name, "json")),
        "description": feed.subtitle,
        "language": publication.language,
        "authors": _json_authors(publication),
    }
    if publication.hubs:
        document["hubs"] = [{"type": "WebSub", "url": hub} for hub in publication.hubs]
    if page.previous:
        document["next_url"] = site_url(publication, page.previous + ".json")
    document["items"] = [_json_item(entry, publication) for entry in page.entries]
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _json_authors(publication: Publication) -> list[dict[str, str]]:
    return [{"name": publication.publisher, "url": site_url(publication)}]


def _json_item(entry: Entry, publication: Publication) -> dict[str, object]:
    item: dict[str, object] = {
        "id": entry.id,
        "url": entry.url,
        "title": entry.title,
        "content_html": entry.html,
        "date_published": entry.published.isoformat(),
        "date_modified": entry.updated.isoformat(),
        "authors": _json_authors(publication),
        "language": publication.language,
    }
    if entry.summary:
        item["summary"] = entry.summary
    if entry.category_label:
        item["tags"] = [entry.category_label]
    return item


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 forbids."""
    return _NOT_XML.sub("", text)
