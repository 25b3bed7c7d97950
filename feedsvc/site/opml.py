"""``/feeds.opml``: every Atom feed of the publication in one OPML 2.0 file, for a reader to import at once. Pure.

Each outline's ``text`` (what readers show) carries the Chinese and the English title; ``title`` is the
feed's own title, as OPML 2.0 asks. Only the Atom feeds are listed: the JSON Feed twins hold the same
entries, and a reader importing both would show every entry twice.
"""

from __future__ import annotations

from lxml import etree

from feedsvc.config import Publication
from feedsvc.site.feeds import ALL, ISSUES, feed_names, feed_path, feed_title, site_url

OPML_PATH = "/feeds.opml"
OPML_TYPE = "text/x-opml"
_WHAT_EN = {ALL: "All sections", ISSUES: "Whole issues"}


def english_title(publication: Publication, name: str) -> str:
    """A feed's title in English: the publication's English name and the section's."""
    section = publication.section_by_slug(name)
    what = (section.name_en or section.name) if section else _WHAT_EN.get(name, name)
    return f"{publication.name_en or publication.name} · {what}"


def render(publication: Publication) -> bytes:
    """The OPML 2.0 document (UTF-8 bytes); the same publication gives the same bytes."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    title = publication.name if not publication.name_en else f"{publication.name} · {publication.name_en}"
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "ownerName").text = publication.publisher
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(root, "body")
    for name in feed_names(publication):
        zh = feed_title(publication, name)
        etree.SubElement(
            body,
            "outline",
            type="rss",
            version="ATOM1",
            text=f"{zh} / {english_title(publication, name)}",
            title=zh,
            xmlUrl=site_url(publication, feed_path(name)),
            htmlUrl=site_url(publication, "/issues/"),
            language=publication.language,
        )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
