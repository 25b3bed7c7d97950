"""Fixtures for the DKIM tests: key files made once per session, a feedsvc.toml with DKIM set, its settings."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from dkim_support import DOMAIN, environment, write_config

from feedsvc.config import Publication, Settings, load_settings
from feedsvc.mail import dkim


@pytest.fixture(scope="session")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An RSA 2048 key (selector s1), a second one for rotation (s2) and an Ed25519 key, as PEM files."""
    folder = tmp_path_factory.mktemp("dkim-keys")
    files = {}
    for name, algorithm in (("s1", dkim.RSA), ("s2", dkim.RSA), ("ed", dkim.ED25519)):
        pem, _ = dkim.generate_key(algorithm, name)
        files[name] = folder / f"{name}.pem"
        files[name].write_bytes(pem)
        os.chmod(files[name], 0o600)
    return files


@pytest.fixture
def dkim_env(key_files: dict[str, Path]) -> dict[str, str]:
    """The key variables for both signatures."""
    return {dkim.KEY_FILE: str(key_files["s1"]), dkim.ED25519_KEY_FILE: str(key_files["ed"])}


@pytest.fixture
def dkim_publication(publication: Publication) -> Publication:
    """The real publication with DKIM for its own domain, selectors s1 and s1-ed25519."""
    return replace(publication, dkim_domain=DOMAIN, dkim_selector="s1")


@pytest.fixture
def signer(dkim_publication: Publication, dkim_env: dict[str, str]) -> dkim.Signer:
    made = dkim.Signer.from_environment(dkim_publication, dkim_env)
    assert made is not None
    return made


@pytest.fixture
def dkim_config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "site", dkim_domain=DOMAIN, dkim_selector="s1")


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "feedsvc.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def dkim_settings(dkim_config: Path, tmp_path: Path, sqlite_url: str, dkim_env: dict[str, str]) -> Settings:
    return load_settings(dkim_config, environment(dkim_config, tmp_path, sqlite_url, **dkim_env))
