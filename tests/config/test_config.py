"""feedsvc.toml and the environment: what is required, what is refused, where secrets come from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feedsvc.config import ConfigError, load_publication, load_settings

ROOT = Path(__file__).resolve().parents[2]


def variant(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "feedsvc.toml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "feedsvc.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_the_project_config_describes_the_publication() -> None:
    publication = load_publication(ROOT / "feedsvc.toml")
    assert (publication.name, publication.publisher, publication.language) == (
        "行业动态周报",
        "中国网络视听协会",
        "zh-CN",
    )
    assert [(s.name, s.slug) for s in publication.sections] == [
        ("行业", "industry"),
        ("内容", "content"),
        ("技术", "technology"),
        ("资本", "capital"),
        ("人事", "people"),
        ("研究", "research"),
    ]
    assert publication.colophon_markers == ("编辑部", "责编", "复核", "注", "报", "发")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('id_authority = "feedsvc.example.org"', "", "id_authority is missing"),
        ('slug = "capital"', 'slug = "industry"', "section slug repeated: industry"),
        ('slug = "capital"', 'slug = "all"', "reserved"),
        ('slug = "capital"', 'slug = "Capital Markets"', "lower-case ASCII"),
        ('base_url = "http://127.0.0.1:8000"', 'base_url = "ftp://example.org"', "not an absolute http(s) URL"),
        ('slug = "capital"', f'slug = "{"c" * 480}"', "at most 512"),  # one key of every slug: 527 characters
    ],
)
def test_a_wrong_config_is_refused_with_the_reason(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = variant(tmp_path, old, new)
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        load_publication(path)
    assert str(caught.value).startswith(str(path))


def test_secrets_and_deployment_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "FEEDSVC_SECRET_KEY": "from-the-environment",
        "FEEDSVC_BASE_URL": "https://news.example.org/",
        "DATABASE_URL": "postgresql://db/feedsvc",
        "FEEDSVC_SMTP_URL": "smtps://u:p@mail.example.org",
        "FEEDSVC_VAR_DIR": str(tmp_path / "var"),
    }
    settings = load_settings(ROOT / "feedsvc.toml", env)
    assert settings.secret_key == "from-the-environment"
    assert settings.base_url == "https://news.example.org"
    assert settings.publication.id_authority == "feedsvc.example.org"  # not the base URL's host
    assert (settings.database_url, settings.smtp_url) == ("postgresql://db/feedsvc", "smtps://u:p@mail.example.org")
    assert settings.mail_dir == tmp_path / "var" / "mail"


def test_without_a_secret_a_development_key_is_kept_private_in_var(tmp_path: Path) -> None:
    env = {"FEEDSVC_VAR_DIR": str(tmp_path / "var")}
    first = load_settings(ROOT / "feedsvc.toml", env).secret_key
    assert len(first) >= 40
    assert load_settings(ROOT / "feedsvc.toml", env).secret_key == first  # links stay valid across restarts
    assert (tmp_path / "var" / "dev-secret-key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("FEEDSVC_TRUSTED_PROXIES", "yes", "FEEDSVC_TRUSTED_PROXIES='yes' is not a whole number"),
        ("FEEDSVC_LEASE_SECONDS", "0", "FEEDSVC_LEASE_SECONDS='0' must be at least 1"),
        ("FEEDSVC_SEND_RATE", "fast", "FEEDSVC_SEND_RATE='fast' is not a number"),
    ],
)
def test_a_malformed_number_in_the_environment_is_named(tmp_path: Path, name: str, value: str, message: str) -> None:
    env = {"FEEDSVC_VAR_DIR": str(tmp_path), "FEEDSVC_SECRET_KEY": "k" * 32, name: value}
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(ROOT / "feedsvc.toml", env)


def test_a_public_site_without_a_secret_key_is_refused(tmp_path: Path) -> None:
    env = {"FEEDSVC_VAR_DIR": str(tmp_path), "FEEDSVC_BASE_URL": "https://news.example.org"}
    with pytest.raises(ConfigError, match="FEEDSVC_SECRET_KEY is not set"):
        load_settings(ROOT / "feedsvc.toml", env)
    assert not (tmp_path / "dev-secret-key").exists()
