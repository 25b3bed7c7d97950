"""DKIM: the keys, the `Signer` that signs a finished message's bytes, the DNS record of each key, DMARC
alignment, and the Feedback-ID value. Pure: settings and bytes in, bytes and text out.

Signing is dkimpy's canonicalisation, header selection and folding with OpenSSL's private-key step
(`feedsvc.mail.dkim_signature`): byte for byte dkimpy's own output, at a twentieth of its cost.

The private keys come from the environment only (``FEEDSVC_DKIM_KEY_FILE`` or ``FEEDSVC_DKIM_KEY`` for the
rsa-sha256 key, ``FEEDSVC_DKIM_ED25519_KEY_FILE`` for the optional Ed25519 one, RFC 8463); the domain and
selectors come from ``[mail]`` in feedsvc.toml. Every problem is a `ConfigError` that says what to fix, raised
when the signer is made (at worker start), never while a send is under way.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import dkim as dkimpy
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from feedsvc.config import ConfigError, Publication, Settings
from feedsvc.mail.alignment import aligned, alignment_problems, organisational_domain
from feedsvc.mail.dkim_signature import signature_fields
from feedsvc.mail.signing import ED25519_KEY_FILE, KEY_FILE, KEY_TEXT

__all__ = [
    "ED25519",
    "RSA",
    "SIGNED_HEADERS",
    "Key",
    "Signer",
    "aligned",
    "alignment_problems",
    "generate_key",
    "load_key",
    "organisational_domain",
]

RSA = "rsa-sha256"
ED25519 = "ed25519-sha256"
RSA_BITS = 2048

#: Signed in this order; From once more at the end (oversigned), so a From added on the way breaks the
#: signature. Headers a message lacks (a notice has no List-Id) are signed as absent: adding one breaks it too.
#: Reply-To is not in the issue's list, but a replayed message with a changed Reply-To is the classic abuse.
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "From",
)
INCLUDE = tuple(name.lower().encode("ascii") for name in SIGNED_HEADERS)  # h=, as dkimpy takes it
_DNS_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*")


@dataclass(frozen=True)
class Key:
    """One signing key: its algorithm, selector, the private key as dkimpy takes it, and the public p= value."""

    algorithm: str
    selector: str
    private: bytes  # as dkimpy takes it: RSA, PKCS#1 PEM; Ed25519, the base64 32-byte seed
    public: str  # base64, as in the DNS record's p=
    secret: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = field(compare=False, repr=False, kw_only=True)

    @property
    def txt(self) -> str:
        """The TXT record to publish at ``<selector>._domainkey.<domain>``."""
        kind = "rsa" if self.algorithm == RSA else "ed25519"
        return f"v=DKIM1; k={kind}; p={self.public}"

    def record_name(self, domain: str) -> str:
        """Where the record lives: ``<selector>._domainkey.<domain>``."""
        return f"{self.selector}._domainkey.{domain}"


def load_key(data: bytes, algorithm: str, selector: str, where: str) -> Key:
    """Parse a private key (PEM; for Ed25519 also dkimpy's base64 seed), checking its kind and size.

    `where` names the source (an environment variable or a file) in the `ConfigError` raised.
    """
    data = data.strip()
    if algorithm == ED25519 and b"-----BEGIN" not in data:
        try:
            seed = base64.b64decode(data, validate=True)
            private: object = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        except ValueError:
            raise ConfigError(f"{where}: not an Ed25519 private key (PEM, or the base64 32-byte seed)") from None
    else:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise ConfigError(f"{where}: the key is encrypted; the worker needs it without a passphrase") from None
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ConfigError(f"{where}: not a PEM private key ({exc})") from None
    if algorithm == RSA:
        if not isinstance(private, rsa.RSAPrivateKey):
            hint = (
                f" (an Ed25519 key goes in {ED25519_KEY_FILE})"
                if isinstance(private, ed25519.Ed25519PrivateKey)
                else ""
            )
            raise ConfigError(f"{where}: not an RSA key{hint}")
        if private.key_size < RSA_BITS:
            raise ConfigError(f"{where}: an RSA key of {private.key_size} bits; DKIM needs {RSA_BITS} (RFC 8301)")
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return Key(RSA, selector, pem, base64.b64encode(public).decode("ascii"), secret=private)
    if not isinstance(private, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{where}: not an Ed25519 key")
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Key(ED25519, selector, base64.b64encode(raw), base64.b64encode(public).decode("ascii"), secret=private)


def generate_key(algorithm: str, selector: str) -> tuple[bytes, Key]:
    """A new key pair: the PEM to store (PKCS#8, unencrypted) and its `Key`."""
    private = (
        ed25519.Ed25519PrivateKey.generate() if algorithm == ED25519 else rsa.generate_private_key(65537, RSA_BITS)
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, load_key(pem, algorithm, selector, "the new key")


@dataclass(frozen=True)
class Signer:
    """Signs finished messages for `domain` with each of `keys` (rsa-sha256 first, then Ed25519)."""

    domain: str
    keys: tuple[Key, ...]

    def sign(self, data: bytes, timestamp: int | None = None) -> bytes:
        """`data` (a whole message) with one DKIM-Signature header per key on top, relaxed/relaxed over
        `SIGNED_HEADERS`, t= `timestamp` (default now)."""
        now = int(time.time()) if timestamp is None else timestamp
        return signature_fields(data, self.domain, self.keys, INCLUDE, now) + data

    def verifies(self, data: bytes) -> bool:
        """Whether every signature on `data` verifies against this signer's own public keys (no DNS)."""
        records = {key.record_name(self.domain).encode("ascii") + b".": key.txt.encode("ascii") for key in self.keys}

        def lookup(name: bytes, timeout: int = 5) -> bytes | None:
            return records.get(name if name.endswith(b".") else name + b".")

        message = dkimpy.DKIM(data)
        try:
            return all(message.verify(idx=i, dnsfunc=lookup) for i in range(len(self.keys)))
        except dkimpy.ValidationError:  # dkimpy raises some failures (a body hash mismatch) instead of saying False
            return False

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer | None:
        """The signer `settings` ask for, or None when DKIM is not configured; a `ConfigError` if it is half
        configured or a key is broken (read the environment and key files; checked once per process)."""
        return cls.from_environment(settings.publication, settings.extra)

    @classmethod
    def from_environment(cls, publication: Publication, env: Mapping[str, str]) -> Signer | None:
        """As `from_settings`, from the publication and the FEEDSVC_* variables."""
        rsa_key, rsa_where = _key_source(env)
        ed_file = env.get(ED25519_KEY_FILE, "").strip()
        selector, ed_selector = publication.dkim_selector, ed25519_selector(publication)
        if not (publication.dkim_selector or publication.dkim_domain or rsa_key or ed_file):
            return None
        if not (publication.dkim_selector and publication.dkim_domain):
            missing = [n for n in ("dkim_selector", "dkim_domain") if not getattr(publication, n)]
            raise ConfigError(
                f"DKIM: [mail] {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set in "
                "feedsvc.toml (a key is given, or DKIM is half set up)"
            )
        if not rsa_key:
            raise ConfigError(
                f"DKIM: [mail] dkim_selector is set but there is no key: set {KEY_FILE} to a PEM file "
                f"(feedsvc dkim keygen --selector {selector}) or {KEY_TEXT} to the PEM itself"
            )
        for what, name in (("dkim_domain", publication.dkim_domain), ("dkim_selector", selector)):
            if not _DNS_NAME.fullmatch(name) or len(name) > 253:
                raise ConfigError(f"DKIM: [mail] {what} {name!r} is not a DNS name")
        if ed_file and (not _DNS_NAME.fullmatch(ed_selector) or ed_selector == selector):
            raise ConfigError(
                f"DKIM: [mail] dkim_ed25519_selector {ed_selector!r} must be a DNS name other than {selector!r}"
            )
        ed_key = _read(ed_file, ED25519_KEY_FILE) if ed_file else b""
        return _signer(publication.dkim_domain, selector, rsa_key, rsa_where, ed_selector, ed_key, ed_file)


def ed25519_selector(publication: Publication) -> str:
    """The Ed25519 key's selector: ``[mail] dkim_ed25519_selector``, else ``<dkim_selector>-ed25519``."""
    return publication.dkim_ed25519_selector or (
        f"{publication.dkim_selector}-ed25519" if publication.dkim_selector else ""
    )


def _key_source(env: Mapping[str, str]) -> tuple[bytes, str]:
    """The RSA key's PEM and where it came from; both variables at once is refused."""
    path, text = env.get(KEY_FILE, "").strip(), env.get(KEY_TEXT, "").strip()
    if path and text:
        raise ConfigError(f"DKIM: set {KEY_FILE} or {KEY_TEXT}, not both")
    if path:
        return _read(path, KEY_FILE), f"{KEY_FILE}={path}"
    return text.encode("utf-8"), KEY_TEXT


def _read(path: str, variable: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"DKIM: {variable}={path}: cannot read it ({exc.strerror or exc})") from None
    return data


@lru_cache(maxsize=8)
def _signer(
    domain: str, selector: str, pem: bytes, where: str, ed_selector: str, ed_pem: bytes, ed_where: str
) -> Signer:
    """Parse the keys and prove them with a trial signature verified by dkimpy (once per process and key)."""
    keys = [load_key(pem, RSA, selector, f"DKIM: {where}")]
    if ed_pem:
        keys.append(load_key(ed_pem, ED25519, ed_selector, f"DKIM: {ED25519_KEY_FILE}={ed_where}"))
    signer = Signer(domain, tuple(keys))
    trial = b"From: <dkim@%s>\r\nTo: <dkim@%s>\r\nSubject: trial\r\n\r\ntrial\r\n" % ((domain.encode(),) * 2)
    try:
        ok = signer.verifies(signer.sign(trial))
    except dkimpy.DKIMException as exc:
        raise ConfigError(f"DKIM: dkimpy cannot sign with the key(s) of {domain}: {exc}") from None
    if not ok:
        raise ConfigError(f"DKIM: a trial signature with the key(s) of {domain} does not verify")
    return signer


# ------------------------------------------------------------------------------------------ Feedback-ID
