"""Keys come from the environment only, and a broken key or half-done setup is refused with the reason,
at worker start, before anything is sent."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dkim_support import environment, write_config

from feedsvc.cli import main
from feedsvc.config import ConfigError, Publication
from feedsvc.mail import dkim


def _pem(key: rsa.RSAPrivateKey, encryption: serialization.KeySerializationEncryption | None = None) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )


def test_not_configured_means_no_signer(publication: Publication) -> None:
    assert dkim.Signer.from_environment(publication, {}) is None


def test_the_key_can_be_given_as_text(dkim_publication: Publication, key_files: dict[str, Path]) -> None:
    signer = dkim.Signer.from_environment(dkim_publication, {dkim.KEY_TEXT: key_files["s1"].read_text()})
    assert signer is not None and [k.algorithm for k in signer.keys] == [dkim.RSA]


def test_an_ed25519_seed_as_dkimpy_writes_it_is_accepted(
    dkim_publication: Publication, key_files: dict[str, Path], tmp_path: Path
) -> None:
    pem_key = dkim.load_key(key_files["ed"].read_bytes(), dkim.ED25519, "x", "test")
    seed = tmp_path / "ed.key"
    seed.write_bytes(pem_key.private + b"\n")
    env = {dkim.KEY_FILE: str(key_files["s1"]), dkim.ED25519_KEY_FILE: str(seed)}
    signer = dkim.Signer.from_environment(dkim_publication, env)
    assert signer is not None and signer.keys[1].public == pem_key.public


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda _: b"not a key at all", "not a PEM private key"),
        (lambda _: _pem(rsa.generate_private_key(65537, 1024)), "1024 bits; DKIM needs 2048"),  # noqa: S505
        (
            lambda _: _pem(rsa.generate_private_key(65537, 2048), serialization.BestAvailableEncryption(b"pw")),
            "encrypted",
        ),
        (lambda files: files["ed"].read_bytes(), f"an Ed25519 key goes in {dkim.ED25519_KEY_FILE}"),
    ],
)
def test_a_broken_rsa_key_is_refused_with_the_reason(
    dkim_publication: Publication, tmp_path: Path, key_files: dict[str, Path], make, says: str
) -> None:
    path = tmp_path / "broken.pem"
    path.write_bytes(make(key_files))
    with pytest.raises(ConfigError, match=says) as caught:
        dkim.Signer.from_environment(dkim_publication, {dkim.KEY_FILE: str(path)})
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "env", "says"),
    [
        ({}, {}, "there is no key"),
        ({"dkim_domain": ""}, {dkim.KEY_FILE: "s1"}, "dkim_domain is not set"),
        ({}, {dkim.KEY_FILE: "s1", dkim.KEY_TEXT: "x"}, "not both"),
        ({}, {dkim.KEY_FILE: "/nonexistent/key.pem"}, "cannot read it"),
        ({"dkim_selector": "bad selector"}, {dkim.KEY_FILE: "s1"}, "not a DNS name"),
        ({}, {dkim.KEY_FILE: "s1", dkim.ED25519_KEY_FILE: "s1"}, "not an Ed25519 key"),
        ({"dkim_ed25519_selector": "s1"}, {dkim.KEY_FILE: "s1", dkim.ED25519_KEY_FILE: "ed"}, "other than 's1'"),
    ],
)
def test_half_done_setups_are_refused(
    dkim_publication: Publication, key_files: dict[str, Path], changes: dict, env: dict, says: str
) -> None:
    env = {name: str(key_files.get(value, value)) for name, value in env.items()}
    with pytest.raises(ConfigError, match=says):
        dkim.Signer.from_environment(replace(dkim_publication, **changes), env)


def test_a_broken_ed25519_seed_is_refused(dkim_publication: Publication, key_files: dict, tmp_path: Path) -> None:
    path = tmp_path / "ed.key"
    path.write_bytes(base64.b64encode(b"short"))
    with pytest.raises(ConfigError, match="not an Ed25519 private key"):
        dkim.Signer.from_environment(
            dkim_publication, {dkim.KEY_FILE: str(key_files["s1"]), dkim.ED25519_KEY_FILE: str(path)}
        )


def test_the_worker_refuses_to_start_with_a_broken_key(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "site", dkim_domain="feedsvc.example.org", dkim_selector="s1")
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    env = environment(config, tmp_path, sqlite_url, FEEDSVC_DKIM_KEY_FILE=str(broken))
    result = CliRunner().invoke(main, ["worker", "--once"], env=env)
    assert result.exit_code == 1
    assert "not a PEM private key" in result.stderr and "nothing was sent" in result.stderr
    assert "sent 0" not in result.stdout  # it never got as far as the send loop


def test_the_worker_says_when_the_dkim_domain_does_not_align(
    tmp_path: Path, sqlite_url: str, key_files: dict[str, Path]
) -> None:
    config = write_config(tmp_path / "site", dkim_domain="mail.other-company.net", dkim_selector="s1")
    env = environment(config, tmp_path, sqlite_url, FEEDSVC_DKIM_KEY_FILE=str(key_files["s1"]))
    result = CliRunner().invoke(main, ["worker", "--once"], env=env)
    assert result.exit_code == 0, result.output
    assert "mail.other-company.net does not align with the From domain feedsvc.example.org" in result.stderr
    assert "DKIM: signing as d=mail.other-company.net (rsa-sha256 s=s1)" in result.stderr


def test_a_key_whose_trial_signature_does_not_verify_is_refused(
    dkim_publication: Publication, key_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dkim.Signer, "sign", lambda self, data: data)  # a signer that signs nothing
    dkim._signer.cache_clear()  # the trial runs once per process and key: make it run again
    try:
        with pytest.raises(ConfigError, match=r"trial signature .* does not verify"):
            dkim.Signer.from_environment(dkim_publication, {dkim.KEY_FILE: str(key_files["s2"])})
    finally:
        dkim._signer.cache_clear()
