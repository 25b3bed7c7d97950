"""What the worker sends for a claimed row: its envelope and final bytes. No Flask.

Issue mail comes from the per-variant render cache: an issue is parsed once per process from the
Markdown recorded at publish, each (issue, variant, language) is rendered and inlined once, and each
reader's message is then a placeholder substitution away. Transactional mail is read from the bytes its
row stores. Either way the result is one (`Envelope`, bytes) pair, personalised and final: what a
signer would sign and a transport sends.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from feedsvc.bounces import verp
from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.content.reader import parse_bytes
from feedsvc.db.engine import Database
from feedsvc.db.models import KIND_ISSUE
from feedsvc.mail import message as mail_message
from feedsvc.mail import newsletter
from feedsvc.mail.transport import Envelope, prepare
from feedsvc.outbox import sends
from feedsvc.outbox.queue import Job
from feedsvc.outbox.rules import stored_message
from feedsvc.subscribers import tokens

__all__ = ["VariantCache"]


class VariantCache:
    """Issue messages from the per-variant render cache; transactional rows from their stored bytes.

    The last `KEEP_ISSUES` issues are kept, with their renders: a long-running worker does not grow.
    """

    KEEP_ISSUES = 8

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self._issues: OrderedDict[int, Issue] = OrderedDict()
        self._rendered: dict[tuple[int, str, str], mail_message.RenderedEmail] = {}
        self._lock = threading.Lock()

    @property
    def issues(self) -> list[int]:
        """Numbers of the issues held, oldest first."""
        return list(self._issues)

    @property
    def variants(self) -> list[tuple[int, str, str]]:
        """(issue, variant, language) of every render held."""
        return list(self._rendered)

    def rendered(self, number: int, variant: str, lang: str) -> mail_message.RenderedEmail:
        """Issue `number` rendered for `variant` (slugs joined by ';') in `lang`, once per process."""
        key = (number, variant, lang)
        found = self._rendered.get(key)
        if found is not None:
            return found
        with self._lock:  # one premailer run per variant, even when every thread asks at once
            found = self._rendered.get(key)
            if found is None:
                found = newsletter.render(
                    self._issue(number),
                    [s for s in variant.split(";") if s],
                    self.settings.publication,
                    lang=lang,
                    templates=self.settings.templates_dir,
                )
                self._rendered[key] = found
            return found

    def _issue(self, number: int) -> Issue:
        """The recorded issue (called with the lock held)."""
        if number in self._issues:
            self._issues.move_to_end(number)
            return self._issues[number]
        with self.db.session(readonly=True) as session:
            recorded = sends.issue_source(session, number)
        if recorded is None:
            raise LookupError(f"issue {number} has outbox rows but was never recorded")
        source, name = recorded
        self._issues[number] = parse_bytes(source.encode("utf-8"), self.settings.publication, source=name)
        while len(self._issues) > self.KEEP_ISSUES:
            gone, _ = self._issues.popitem(last=False)
            for key in [k for k in self._rendered if k[0] == gone]:
                del self._rendered[key]
        return self._issues[number]

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
