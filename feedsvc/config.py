"""Settings: the publication from feedsvc.toml, the deployment from FEEDSVC_* environment variables.

Secrets (secret key, SMTP credentials, admin password, database URL) only ever come from the
environment. Everything here is plain frozen data: pure modules take a `Publication`, shells take
`Settings`.
"""

from __future__ import annotations

import os
import tomllib
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, TypeVar
from urllib.parse import urlsplit

CONFIG_FILE = "feedsvc.toml"
IMAGE_POLICIES = ("https", "none")  # [content] images: which remote images issues may show
SECTION_KEY_LENGTH = 512  # the longest ';'-joined slug set (subscribers.sections_key, outbox.sections)


class ConfigError(Exception):
    """feedsvc.toml or the environment is wrong; the message says what and where."""


@dataclass(frozen=True)
class SectionConfig:
    """A section of the publication: its heading as written in issues, and its URL slug."""

    name: str
    slug: str
    name_en: str = ""


class SectionChoice(NamedTuple):
    """Sections chosen by slug: the known ones in configured order, and what was not a configured slug."""

    slugs: tuple[str, ...]
    unknown: tuple[str, ...]


@dataclass(frozen=True)
class Publication:
    """What the pure core needs to know about the publication."""

    name: str
    publisher: str
    sections: tuple[SectionConfig, ...]
    language: str = "zh-CN"
    name_en: str = ""
    publisher_en: str = ""
    description: str = ""
    base_url: str = "http://127.0.0.1:8000"
    id_authority: str = "feedsvc.example.org"
    id_since: str = "2024"
    summary_heading: str = "摘要"
    colophon_markers: tuple[str, ...] = ()
    feed_limit: int = 100
    websub_hub: str = ""
    websub_hubs: tuple[str, ...] = ()
    timezone: str = "UTC"
    from_name: str = ""
    from_address: str = "newsletter@example.org"
    reply_to: str = ""
    welcome_mail: bool = True  # [mail] welcome: a welcome mail once a reader confirms
    unsubscribe_mailto: str = ""
    postal_address: str = ""
    images: str = "https"  # remote images kept in pages, feeds and mails: "https" or "none"
    dkim_domain: str = ""  # d= of the DKIM signatures (feedsvc.mail.dkim); signing needs a key from the environment
    dkim_selector: str = ""
    dkim_ed25519_selector: str = ""
    dmarc_reports: str = ""  # the rua address `feedsvc dns` proposes for DMARC aggregate reports
    return_path: str = ""  # [bounces] return_path: VERP envelope senders <local>+<tag>@<domain> (feedsvc.bounces.verp)

    def section_by_name(self, name: str) -> SectionConfig | None:
        """The configured section whose heading is `name`, if any."""
        return next((s for s in self.sections if s.name == name), None)

    def section_by_slug(self, slug: str) -> SectionConfig | None:
        """The configured section with URL slug `slug`, if any."""
        return next((s for s in self.sections if s.slug == slug), None)

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(s.slug for s in self.sections)

    def section_label(self, slug: str, lang: str) -> str:
        """A section's name for a reader of `lang`: its English name in "en" if it has one; an unknown slug as is."""
        section = self.section_by_slug(slug)
        if section is None:
            return slug
        return section.name_en or section.name if lang == "en" else section.name

    def variant_label(self, key: str, lang: str) -> str:
        """A ';'-joined set of slugs as the publisher reads it: 行业 + 技术 (or Industry + Technology)."""
        return " + ".join(self.section_label(slug, lang) for slug in key.split(";") if slug) or "—"

    def choose_sections(self, value: str | Iterable[str] | None) -> SectionChoice:
        """`choose_sections` among this publication's sections."""
        return choose_sections(value, self.slugs)

    @property
    def hubs(self) -> tuple[str, ...]:
        """Every WebSub hub to announce and ping: `websub_hubs`, then the older single `websub_hub`."""
        return tuple(dict.fromkeys(h for h in (*self.websub_hubs, self.websub_hub) if h))

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The publication's time zone: an issue's date is a day there."""
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def mail_domain(self) -> str:
        """The domain of the sender address (Message-ID, List-Id)."""
        return self.from_address.rpartition("@")[2] or self.id_authority


def choose_sections(value: str | Iterable[str] | None, known: Sequence[str]) -> SectionChoice:
    """A choice of sections as written anywhere: None or "all" (every one of `known`), "a,b" / "a; b", or slugs.

    The known slugs come back in the order of `known`, duplicates dropped, case and spaces ignored; the
    unknown ones are kept apart (sorted) for the caller to refuse in its own words. An empty choice is
    empty: what that means is the caller's to say.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return SectionChoice(tuple(known), ())
    parts = value.replace(",", ";").split(";") if isinstance(value, str) else value
    wanted = {part.strip().lower() for part in parts if part.strip()}
    return SectionChoice(tuple(s for s in known if s in wanted), tuple(sorted(wanted - set(known))))


@dataclass(frozen=True)
class Settings:
    """Everything a running feedsvc needs: the publication plus where things live and secrets."""

    publication: Publication
    root: Path
    issues_dir: Path
    site_dir: Path
    templates_dir: Path
    var_dir: Path
    mail_dir: Path
    database_url: str
    secret_key: str
    smtp_url: str = ""
    admin_password: str = ""
    lease_seconds: int = 300
    send_rate: float = 0.0
    trusted_proxies: int = 0
    staff_idle_minutes: int = 30
    staff_session_hours: int = 12
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.publication.base_url

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields replaced (tests, CLI options)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def find_config(start: Path | None = None) -> Path:
    """FEEDSVC_CONFIG, else feedsvc.toml in the current directory or one of its parents."""
    explicit = os.environ.get("FEEDSVC_CONFIG")
    if explicit:
        return Path(explicit)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no {CONFIG_FILE} in {here} or its parents (set FEEDSVC_CONFIG to its path)")


def load_publication(path: Path, base_url: str | None = None) -> Publication:
    """Read the publication part of feedsvc.toml, checking sections and slugs."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    pub = data.get("publication", {})
    feeds = data.get("feeds", {})
    mail = data.get("mail", {})
    content = data.get("content", {})
    return_path = str(data.get("bounces", {}).get("return_path", "")).strip()
    if return_path and (return_path.count("@") != 1 or "+" in return_path or not return_path.isascii()):
        raise ConfigError(f"{path}: [bounces] return_path {return_path!r} must be one ASCII address without '+'")
    images = content.get("images", "https")
    if images not in IMAGE_POLICIES:
        raise ConfigError(f'{path}: [content] images = {images!r}: write "https" (https images only) or "none"')
    sections = tuple(_section(path, i, raw) for i, raw in enumerate(data.get("sections", []), 1))
    if not sections:
        raise ConfigError(f"{path}: no [[sections]] configured")
    for attr in ("name", "slug"):
        values = [getattr(s, attr) for s in sections]
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ConfigError(f"{path}: section {attr} repeated: {', '.join(dupes)}")
    every = ";".join(sorted(s.slug for s in sections))
    if len(every) > SECTION_KEY_LENGTH:
        raise ConfigError(
            f"{path}: the section slugs take {len(every)} characters joined by ';', at most {SECTION_KEY_LENGTH}: "
            "a reader's chosen sections are stored as one such key"
        )
    for required in ("name", "publisher"):
        if not pub.get(required):
            raise ConfigError(f"{path}: [publication] {required} is missing")
    if not pub.get("id_authority"):
        raise ConfigError(
            f"{path}: [publication] id_authority is missing: a domain you own, fixed for good, that every feed "
            "entry id is built from (kept apart from base_url, so that moving the site changes no id)"
        )
    timezone = str(pub.get("timezone", "UTC"))
    try:
        zoneinfo.ZoneInfo(timezone)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ConfigError(f"{path}: [publication] timezone {timezone!r} is not an IANA time zone") from None
    hubs = feeds.get("websub_hubs", [])
    hubs = [hubs] if isinstance(hubs, str) else hubs
    for hub in [*hubs, feeds.get("websub_hub", "")]:
        if hub and (urlsplit(str(hub)).scheme not in ("http", "https") or not urlsplit(str(hub)).netloc):
            raise ConfigError(f"{path}: [feeds] WebSub hub {hub!r} is not an absolute http(s) URL")
    url = (base_url or pub.get("base_url") or "http://127.0.0.1:8000").rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ConfigError(f"{path}: base_url {url!r} is not an absolute http(s) URL")
    return Publication(
        name=pub["name"],
        publisher=pub["publisher"],
        sections=sections,
        language=pub.get("language", "zh-CN"),
        name_en=pub.get("name_en", ""),
        publisher_en=pub.get("publisher_en", ""),
        description=pub.get("description", ""),
        base_url=url,
        id_authority=pub["id_authority"],
        id_since=str(pub.get("id_since", "2024")),
        summary_heading=pub.get("summary_heading", "摘要"),
        colophon_markers=tuple(pub.get("colophon_markers", ())),
        feed_limit=int(feeds.get("limit", 100)),
        websub_hub=feeds.get("websub_hub", ""),
        websub_hubs=tuple(str(hub) for hub in hubs),
        timezone=timezone,
        from_name=mail.get("from_name") or pub["name"],
        from_address=mail.get("from_address", "newsletter@example.org"),
        reply_to=mail.get("reply_to", ""),
        welcome_mail=bool(mail.get("welcome", True)),
        unsubscribe_mailto=mail.get("unsubscribe_mailto", ""),
        postal_address=" ".join(str(mail.get("postal_address", "")).split()),
        images=images,
        dkim_domain=str(mail.get("dkim_domain", "")).strip().lower().rstrip("."),
        dkim_selector=str(mail.get("dkim_selector", "")).strip().lower(),
        dkim_ed25519_selector=str(mail.get("dkim_ed25519_selector", "")).strip().lower(),
        dmarc_reports=str(mail.get("dmarc_reports", "")).strip(),
        return_path=return_path,
    )


def _section(path: Path, index: int, raw: dict) -> SectionConfig:
    name, slug = raw.get("name", ""), raw.get("slug", "")
    if not name or not slug:
        raise ConfigError(f"{path}: [[sections]] number {index} needs both name and slug")
    if not slug.isascii() or not slug.replace("-", "").isalnum() or slug != slug.lower():
        raise ConfigError(f"{path}: section slug {slug!r} must be lower-case ASCII letters, digits and '-'")
    if slug in ("all", "issues"):
        raise ConfigError(f"{path}: section slug {slug!r} is reserved for a feed of its own")
    return SectionConfig(name=name, slug=slug, name_en=raw.get("name_en", ""))


def load_settings(config_path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from feedsvc.toml and the environment (FEEDSVC_*, DATABASE_URL)."""
    env = os.environ if env is None else env
    path = config_path or find_config()
    root = path.resolve().parent
    publication = load_publication(path, env.get("FEEDSVC_BASE_URL"))
    var_dir = Path(env.get("FEEDSVC_VAR_DIR", root / "var"))
    secret = env.get("FEEDSVC_SECRET_KEY", "")
    if not secret:
        # Only on a developer's machine (a loopback base URL) is a generated key kept in var/. Anywhere
        # else every process must share one key, or links signed by a worker fail on the web server.
        host = urlsplit(publication.base_url).hostname or ""
        if host not in ("localhost", "::1") and not host.startswith("127."):
            raise ConfigError(
                f"FEEDSVC_SECRET_KEY is not set: every web process and worker serving {publication.base_url} "
                "must share one secret key (for example: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        secret = _dev_secret(var_dir)
    return Settings(
        publication=publication,
        root=root,
        issues_dir=Path(env.get("FEEDSVC_ISSUES_DIR", root / "issues")),
        site_dir=Path(env.get("FEEDSVC_SITE_DIR", var_dir / "site")),
        templates_dir=Path(env.get("FEEDSVC_TEMPLATES_DIR", root / "templates")),
        var_dir=var_dir,
        mail_dir=Path(env.get("FEEDSVC_MAIL_DIR", var_dir / "mail")),
        database_url=env.get("DATABASE_URL", f"sqlite:///{var_dir / 'feedsvc.db'}"),
        secret_key=secret,
        smtp_url=env.get("FEEDSVC_SMTP_URL", ""),
        admin_password=env.get("FEEDSVC_ADMIN_PASSWORD", ""),
        lease_seconds=_number(env, "FEEDSVC_LEASE_SECONDS", 300, int, minimum=1),
        send_rate=_number(env, "FEEDSVC_SEND_RATE", 0.0, float, minimum=0),
        trusted_proxies=_number(env, "FEEDSVC_TRUSTED_PROXIES", 0, int, minimum=0),
        staff_idle_minutes=_number(env, "FEEDSVC_STAFF_IDLE_MINUTES", 30, int, minimum=1),
        staff_session_hours=_number(env, "FEEDSVC_STAFF_SESSION_HOURS", 12, int, minimum=1),
        extra={k: v for k, v in env.items() if k.startswith("FEEDSVC_")},
    )


_N = TypeVar("_N", int, float)


def _number(env: Mapping[str, str], name: str, default: _N, kind: type[_N], *, minimum: _N) -> _N:
    """A numeric environment variable, or ConfigError naming it."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a {'whole ' if kind is int else ''}number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _dev_secret(var_dir: Path) -> str:
    """The development key in var/, made once (private to its owner from the first byte)."""
    import secrets

    path = var_dir / "dev-secret-key"
    var_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_urlsafe(32))
    return path.read_text(encoding="ascii").strip()
