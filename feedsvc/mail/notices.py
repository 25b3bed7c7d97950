"""Transactional notices (confirmation, manage link): rendered once per kind and language, slots filled per reader."""

from __future__ import annotations

import html as htmllib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from feedsvc.config import Settings


@dataclass(frozen=True)
class Notice:
    """A rendered confirmation or manage-link mail, as its outbox row stores it.

    The row keeps the rendered parts (compact JSON), not MIME: building and serialising an
    EmailMessage costs more than rendering it, and the web request that queues the mail holds the
    database's write lock meanwhile. `message()` builds the real thing when the worker sends it; the
    Message-ID is fixed at rendering, so a retried send carries the same one.
    """

    sender_name: str
    sender_address: str
    reply_to: str
    to: str
    subject: str
    text: str
    html: str
    message_id: str

    def to_bytes(self) -> bytes:
        """The compact JSON the outbox row stores."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Notice:
        """The notice an outbox row stored with `to_bytes`."""
        return cls(**json.loads(data.decode("utf-8")))

    def message(self) -> EmailMessage:
        """The multipart/alternative message (text, then HTML), dated now."""
        message = EmailMessage()
        message["Subject"] = self.subject
        message["From"] = Address(self.sender_name, addr_spec=self.sender_address)
        message["To"] = self.to
        if self.reply_to:
            message["Reply-To"] = self.reply_to
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = self.message_id
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


# Stand-ins for the per-recipient values while a notice template is rendered: letters and digits only,
# so neither Jinja's autoescape nor anything else changes them.
_SLOTS = {
    "to": "FeedsvcSlotTo9q",
    "confirm_url": "FeedsvcSlotConfirm9q",
    "manage_url": "FeedsvcSlotManage9q",
    "unsubscribe_url": "FeedsvcSlotUnsubscribe9q",
    "sections_zh": "FeedsvcSlotSectionsZh9q",
    "sections_en": "FeedsvcSlotSectionsEn9q",
    "password_url": "FeedsvcSlotPassword9q",
}
_DRAFTS: dict[tuple[object, ...], tuple[str, str, str]] = {}


def _draft(settings: Settings, kind: str, lang: str) -> tuple[str, str, str]:
    """(subject, text, html) of a notice with slots for the recipient's values, rendered once per process.

    Render once, personalise cheaply: the sign-up request fills the slots with `str.replace`, and does so
    inside its write transaction. A changed top-level template (Jinja reloads it) is rendered again;
    edits to included partials are picked up on restart.
    """
    from feedsvc.mail.templates import environment  # Jinja2: where notices are rendered, not where they are sent

    env = environment(str(settings.templates_dir.resolve()), lang)
    templates = tuple(env.get_template(f"email/{kind}.{part}") for part in ("subject.txt", "txt", "html"))
    key = (settings.templates_dir, settings.publication, kind, lang, templates)
    draft = _DRAFTS.get(key)
    if draft is None:
        context: dict[str, Any] = {"publication": settings.publication, "lang": lang, **_SLOTS}
        subject, text, html = (template.render(context) for template in templates)
        draft = (" ".join(subject.split()), text, html)
        if len(_DRAFTS) > 64:
            _DRAFTS.clear()
        _DRAFTS[key] = draft
    return draft


def render(settings: Settings, kind: str, to: str, lang: str, links: dict[str, str]) -> Notice:
    """A confirmation (`confirm`), manage-link (`manage`) or `welcome` mail from templates/email/<kind>.*, text and
    HTML; `links` fills the slots (the URLs, and a welcome's `sections_zh`/`sections_en`)."""
    subject, text, html = _draft(settings, kind, lang)
    values = dict.fromkeys(_SLOTS, "") | {"to": to, **links}
    for name, slot in _SLOTS.items():
        text = text.replace(slot, values[name])
        html = html.replace(slot, htmllib.escape(values[name], quote=True))
    publication = settings.publication
    return Notice(
        sender_name=publication.from_name,
        sender_address=publication.from_address,
        reply_to=publication.reply_to,
        to=to,
        subject=subject,
        text=text,
        html=html,
        message_id=make_msgid(domain=publication.mail_domain),
    )
