"""What the worker sends for a claimed row: its envelope and final bytes. No Flask.

Issue mail comes from the per-variant render cache: each (issue, variant, language) is rendered and
inlined once per process, and each reader's message is then a placeholder substitution away.
Transactional mail is read from the bytes its row stores. Either way the result is one (`Envelope`,
bytes) pair, personalised and final: what a signer would sign and a transport sends.

The rendering itself (Markdown, Jinja2, premailer with lxml and cssutils: some 25 MB once imported)
never runs in the worker: a short-lived child process (feedsvc.mail.variants) parses the issue as
recorded at publish and renders at once every variant of it that the worker has claimed rows for; the
worker keeps only the rendered text. So the worker's memory stays what claiming and sending need,
whatever the send's size. (A process that has loaded the renderer anyway, as the `feedsvc` command does,
renders in itself: the memory is spent already.) The first sender thread that needs a render does it; the
others wait for it, and the claimer goes on renewing leases meanwhile.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import feedsvc
from feedsvc.bounces import verp
from feedsvc.config import Publication, Settings
from feedsvc.db.engine import Database
from feedsvc.db.tables import KIND_ISSUE
from feedsvc.mail import message as mail_message
from feedsvc.mail.transport import Envelope, prepare
from feedsvc.outbox import sends
from feedsvc.outbox.queue import Job
from feedsvc.outbox.rules import stored_message
from feedsvc.subscribers import tokens

if TYPE_CHECKING:
    from feedsvc.mail.variants import Key

__all__ = ["RenderFailed", "VariantCache"]

#: the module whose import means the renderer (premailer, lxml, Jinja2, Markdown) is loaded in this process.
RENDERER = "feedsvc.mail.newsletter"
#: seconds a render child may take before the render counts as failed (the rows are retried later).
RENDER_TIMEOUT = 300


class RenderFailed(Exception):
    """An issue variant could not be rendered; the message says why (the renderer's own error)."""


def _render(
    publication: Publication, templates: Path | None, source: str, source_name: str, keys: Sequence[Key]
) -> dict[Key, mail_message.RenderedEmail | str]:
    """The renders of `keys`: in this process when it has loaded the renderer already (a child would only add
    its start-up, the memory is spent), else in a child process."""
    if RENDERER in sys.modules:
        from feedsvc.mail.variants import render_variants

        return render_variants(publication, templates, source, source_name, keys)
    return _render_in_child(publication, templates, source, source_name, keys)


def _render_in_child(
    publication: Publication, templates: Path | None, source: str, source_name: str, keys: Sequence[Key]
) -> dict[Key, mail_message.RenderedEmail | str]:
    """`feedsvc.mail.variants.render_variants` in a child process, so that its imports never weigh on this one."""
    payload = pickle.dumps((publication, templates, source, source_name, list(keys)))
    package_root = str(Path(feedsvc.__file__).resolve().parent.parent)
    code = f"import sys; sys.path.insert(0, {package_root!r}); from feedsvc.mail.variants import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code], input=payload, capture_output=True, timeout=RENDER_TIMEOUT, check=False
    )
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise RenderFailed(f"the render process exited with {done.returncode}: {tail[0]}")
    return pickle.loads(done.stdout)  # noqa: S301 - written by the child started just above


class VariantCache:
    """Issue messages from the per-variant render cache; transactional rows from their stored bytes.

    The renders of the last `KEEP_ISSUES` issues are kept: a long-running worker does not grow.
    """

    KEEP_ISSUES = 8

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self._rendered: OrderedDict[int, dict[Key, mail_message.RenderedEmail | str]] = OrderedDict()
        self._wanted: dict[int, set[Key]] = {}
        self._lock = threading.Lock()

    @property
    def issues(self) -> list[int]:
        """Numbers of the issues held, oldest first."""
        return list(self._rendered)

    @property
    def variants(self) -> list[tuple[int, str, str]]:
        """(issue, variant, language) of every render held."""
        return [(number, v, lang) for number, held in self._rendered.items() for v, lang in held]

    def want(self, jobs: Iterable[Job]) -> None:
        """Note the variants these claimed jobs need: the next render of their issue makes them all at once."""
        with self._lock:
            for job in jobs:
                if job.kind == KIND_ISSUE and job.issue_number is not None:
                    self._wanted.setdefault(job.issue_number, set()).add((job.sections or "", job.lang))

    def rendered(self, number: int, variant: str, lang: str) -> mail_message.RenderedEmail:
        """Issue `number` rendered for `variant` (slugs joined by ';') in `lang`, once per process."""
        held = self._rendered.get(number, {}).get((variant, lang))
        found = held if held is not None else self._render(number, [(variant, lang)])[(variant, lang)]
        if isinstance(found, str):
            raise RenderFailed(found)
        return found

    def _render(self, number: int, keys: Sequence[Key]) -> dict[Key, Any]:
        """The renders of `keys` for issue `number`, rendering those not held (one child, even when every
        thread asks at once)."""
        with self._lock:
            held = self._rendered.get(number)
            if held is not None:
                self._rendered.move_to_end(number)
            wanted = set(keys) | self._wanted.pop(number, set())
            missing = sorted(k for k in wanted if held is None or k not in held)
            if missing:
                with self.db.transaction(readonly=True) as connection:
                    recorded = sends.issue_source(connection, number)
                if recorded is None:
                    raise LookupError(f"issue {number} has outbox rows but was never recorded")
                source, name = recorded
                fresh = _render(self.settings.publication, self.settings.templates_dir, source, name, missing)
                held = self._rendered.setdefault(number, {})
                held.update(fresh)
                while len(self._rendered) > self.KEEP_ISSUES:
                    self._rendered.popitem(last=False)
            return dict(self._rendered[number])

    def prepare(self, job: Job) -> tuple[Envelope, bytes]:
        """The envelope and bytes of `job`'s message, personalised and final."""
        if job.kind != KIND_ISSUE:
            envelope, data = prepare(stored_message(job.id, job.kind, job.message))
            return verp.with_return_path(self.settings, job.id, envelope), data
        if job.issue_number is None or job.subscriber_id is None:
            raise ValueError(f"outbox row {job.id}: issue mail without issue or subscriber")
        rendered = self.rendered(job.issue_number, job.sections or "", job.lang)
        settings, publication = self.settings, self.settings.publication
        links = mail_message.Links(
            manage=tokens.link(settings, tokens.MANAGE, job.subscriber_id, job.token_version),
            unsubscribe=tokens.link(settings, tokens.UNSUBSCRIBE, job.subscriber_id, job.token_version),
        )
        message_id = mail_message.make_message_id(
            publication, "issue", job.issue_number, verp.message_id_part(settings, job.id)
        )
        built = mail_message.build_message(rendered, job.recipient, links, publication, message_id=message_id)
        # The values the worker itself put in the message, checked by build_message: no parsing back.
        envelope = Envelope(publication.from_address, (job.recipient,), message_id)
        return verp.with_return_path(settings, job.id, envelope), mail_message.serialise(built)
