"""Amazon SES notifications through SNS: the signature checked, the subscription confirmed, Bounce and Complaint
turned into `BounceEvent`s. No Flask, no database.

- Only ``https://sns.<region>.amazonaws.com[.cn]/…`` is ever fetched (the signing certificate and the SubscribeURL). The
  rule is checked on the URL as given, before anything is fetched; a mere ``*.amazonaws.com`` is not enough, as
  anyone can put a file on ``<bucket>.s3.amazonaws.com``.
- SignatureVersion 1 is SHA1withRSA, 2 SHA256withRSA, over the canonical string of the message's Type (AWS's
  "Verifying the signatures of Amazon SNS messages"). Certificates are cached per URL, and one past its validity is
  refused.
- The fetcher is a parameter (`Fetch`: URL -> bytes): production uses `fetch_https` (TLS verified against the
  system's store, 10 s, 64 KB at most); tests give one that takes the same amazonaws.com URL to their own server.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from feedsvc.bounces.classify import COMPLAINT, POLICY, classify_feedback

__all__ = ["Fetch", "SesEvent", "SnsError", "SnsVerifier", "fetch_https", "is_sns_url", "ses_events"]

Fetch = Callable[[str], bytes]
MAX_FETCH = 64 * 1024
# A region name (us-east-1, us-gov-west-1, cn-north-1), not any label: S3 serves a bucket named "sns" over HTTPS as
# sns.s3.amazonaws.com and sns.s3-<region>.amazonaws.com. AWS China's hosts end in .amazonaws.com.cn.
_SNS_HOST = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}\.amazonaws\.com(?:\.cn)?")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class SnsError(ValueError):
    """A message that is not a genuine SNS message for us; `status` is the HTTP answer it deserves."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def is_sns_url(url: str) -> bool:
    """True for ``https://sns.<region>.amazonaws.com[.cn]/…`` on the default port, with no user part."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return (
        parts.scheme == "https"
        and port in (None, 443)
        and "@" not in parts.netloc
        and bool(_SNS_HOST.fullmatch(host))
        and parts.netloc.lower().split(":")[0] == host
    )


def fetch_https(url: str) -> bytes:
    """GET an SNS URL with TLS verified; at most MAX_FETCH bytes. The production fetcher."""
    if not is_sns_url(url):
        raise SnsError(f"refused to fetch {url!r}: not https on sns.<region>.amazonaws.com")
    opener = urllib.request.build_opener(_NoRedirect)
    with opener.open(url, timeout=10) as response:
        return response.read(MAX_FETCH + 1)[:MAX_FETCH]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead off amazonaws.com: refuse it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class SnsVerifier:
    """Checks SNS signatures with certificates fetched through `fetch` and kept per URL."""

    def __init__(self, fetch: Fetch = fetch_https) -> None:
        self.fetch = fetch
        self._certificates: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()

    def verify(self, message: Mapping[str, Any], *, now: datetime | None = None) -> None:
        """Return when `message` is signed by SNS; SnsError (403 for a bad signature) otherwise."""
        kind = message.get("Type")
        fields = _FIELDS.get(kind) if isinstance(kind, str) else None
        if fields is None:
            raise SnsError(f"unknown SNS message Type {kind!r}")
        version = str(message.get("SignatureVersion", ""))
        if version not in _HASHES:
            raise SnsError(f"SignatureVersion {version!r}: only 1 (SHA1) and 2 (SHA256) are known")
        url = message.get("SigningCertURL") or message.get("SigningCertUrl") or ""
        if not isinstance(url, str) or not is_sns_url(url):
            raise SnsError("SigningCertURL is not https on sns.<region>.amazonaws.com", 403)
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except ValueError:
            raise SnsError("Signature is not base64", 403) from None
        certificate = self._certificate(url, now or datetime.now(UTC))
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsError("the signing certificate holds no RSA key", 403)
        try:
            key.verify(signature, canonical(message, fields), padding.PKCS1v15(), _HASHES[version]())
        except InvalidSignature:
            raise SnsError("the SNS signature does not match", 403) from None

    def _certificate(self, url: str, now: datetime) -> x509.Certificate:
        with self._lock:
            certificate = self._certificates.get(url)
        if certificate is None:
            try:
                pem = self.fetch(url)
            except SnsError:
                raise
            except Exception as exc:
                raise SnsError(f"the signing certificate could not be fetched: {exc}", 503) from None
            try:
                certificate = x509.load_pem_x509_certificate(pem)
            except ValueError:
                raise SnsError("the signing certificate is not a PEM certificate", 403) from None
            with self._lock:
                if len(self._certificates) > 64:
                    self._certificates.clear()
                self._certificates[url] = certificate
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise SnsError("the signing certificate is not valid now", 403)
        return certificate


def canonical(message: Mapping[str, Any], fields: tuple[str, ...]) -> bytes:
    """The string SNS signs: each present field's name and value, one per line, in the order of `fields`."""
    lines = []
    for name in fields:
        value = message.get(name)
        if value is None:
            if name == "Subject":
                continue
            raise SnsError(f"the SNS message lacks {name}")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode("utf-8")


# ------------------------------------------------------------------------------------------- SES's own words


@dataclass(frozen=True)
class SesEvent:
    """One recipient of an SES Bounce or Complaint notification, as feedsvc.bounces.intake.BounceEvent wants it."""

    message_id: str
    recipient: str
    kind: str  # hard, soft, complaint, policy
    status: str
    diagnostic: str


def ses_events(notification: Mapping[str, Any]) -> list[SesEvent]:
    """The bounces and complaints an SES notification (or event publishing record) reports; [] for the rest
    (Delivery, Send, …). SnsError for a Bounce or Complaint missing what it needs."""
    kind = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail") if isinstance(notification.get("mail"), dict) else {}
    message_id = _message_id(mail)
    if kind == "Bounce":
        bounce = _section(notification, "bounce")
        bounce_type = bounce.get("bounceType")
        severity = "hard" if bounce_type == "Permanent" else "soft"  # Transient, and Undetermined: never more
        return [
            SesEvent(
                message_id,
                str(r.get("emailAddress", "")),
                severity,
                str(r.get("status", "")),
                str(r.get("diagnosticCode", "") or bounce.get("bounceSubType", "")),
            )
            for r in _list(bounce, "bouncedRecipients")
        ]
    if kind == "Complaint":
        complaint = _section(notification, "complaint")
        feedback = str(complaint.get("complaintFeedbackType") or "abuse")
        words = str(complaint.get("complaintSubType") or complaint.get("userAgent") or "")
        kind = classify_feedback(feedback)  # the ARF rule: not-spam is nothing, virus or auth-failure is policy
        if kind not in (COMPLAINT, POLICY):
            return []
        return [
            SesEvent(message_id, str(r.get("emailAddress", "")), kind, feedback, words)
            for r in _list(complaint, "complainedRecipients")
        ]
    return []


def _message_id(mail: Mapping[str, Any]) -> str:
    """The Message-ID we sent: from the original headers, else the common headers, else SES's own id."""
    headers = mail.get("headers")
    if isinstance(headers, list):
        for header in headers:
            if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
                return str(header.get("value", "")).strip()
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and common.get("messageId"):
        return str(common["messageId"]).strip()
    own = str(mail.get("messageId", "")).strip()
    return own if not own or own.startswith("<") else f"<{own}>"


def _section(notification: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = notification.get(name)
    if not isinstance(section, dict):
        raise SnsError(f"an SES {name} notification without its {name!r} object")
    return section


def _list(section: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    items = section.get(name)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SnsError(f"an SES notification whose {name!r} is not a list of recipients")
    return items


def read_message(body: bytes) -> dict[str, Any]:
    """The SNS envelope (SNS posts JSON as text/plain); SnsError when it is not a JSON object."""
    try:
        message = json.loads(body)
    except ValueError:
        raise SnsError("the body is not JSON") from None
    if not isinstance(message, dict):
        raise SnsError("the body is not a JSON object")
    return message
