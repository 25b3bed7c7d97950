"""Render an issue's variants in a process of their own: the worker's render child. No Flask, no database.

`feedsvc.outbox.renders` starts this module's `main` as a short-lived child process with a pickled
request on stdin (publication, templates, the issue's Markdown as recorded at publish, the (variant,
language) pairs) and reads the pickled renders from stdout. Markdown, Jinja2 and premailer (with lxml
and cssutils) are loaded here, never in the worker.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

from feedsvc.config import Publication
from feedsvc.content.reader import parse_bytes
from feedsvc.mail import newsletter
from feedsvc.mail.message import RenderedEmail

__all__ = ["main", "render_variants"]

Key = tuple[str, str]  # (variant: slugs joined by ';', language)


def render_variants(
    publication: Publication, templates: Path | None, source: str, source_name: str, keys: Sequence[Key]
) -> dict[Key, RenderedEmail | str]:
    """Parse the recorded `source` once and render each (variant, language); an error's text for those that fail.

    An error's text (its type and message) rather than the exception: the worker need not import the
    renderer's exception classes to read it.
    """
    issue = parse_bytes(source.encode("utf-8"), publication, source=source_name)
    results: dict[Key, RenderedEmail | str] = {}
    for variant, lang in keys:
        try:
            slugs = [s for s in variant.split(";") if s]
            results[(variant, lang)] = newsletter.render(issue, slugs, publication, lang=lang, templates=templates)
        except Exception as exc:  # EmailError, EmptySelection, a template error: the rows say why
            results[(variant, lang)] = f"{type(exc).__name__}: {exc}"
    return results


def main() -> None:
    """The render child: a pickled request on stdin, the pickled renders on stdout."""
    publication, templates, source, source_name, keys = pickle.load(sys.stdin.buffer)  # noqa: S301 - from the parent
    sys.stdout.buffer.write(pickle.dumps(render_variants(publication, templates, source, source_name, keys)))
