"""`feedsvc dkim keygen`, `feedsvc dns` and `feedsvc dns --check` against a DNS server on loopback."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from dkim_support import DOMAIN, environment, verify_all, write_config
from dns_support import ZoneServer

from feedsvc.cli import main
from feedsvc.config import load_publication
from feedsvc.mail import dkim, newsletter
from feedsvc.mail import message as mail_message


def feedsvc(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, args, env=env)


@pytest.fixture
def env(dkim_config: Path, tmp_path: Path, sqlite_url: str, dkim_env: dict[str, str]) -> dict[str, str]:
    return environment(dkim_config, tmp_path, sqlite_url, **dkim_env)


def _record_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line and not line.startswith(";")]


def test_keygen_writes_a_private_key_and_prints_its_record(env: dict[str, str], tmp_path: Path) -> None:
    result = feedsvc(["dkim", "keygen", "--selector", "2026a"], env)
    assert result.exit_code == 0, result.output
    path = tmp_path / "var" / "dkim" / "2026a.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = dkim.load_key(path.read_bytes(), dkim.RSA, "2026a", "test")
    [line] = _record_lines(result.stdout)
    assert line.startswith(f'2026a._domainkey.{DOMAIN}. 3600 IN TXT "v=DKIM1; k=rsa; p=')
    assert "".join(line.split('"')[1::2]) == key.txt  # split into 255-byte strings, joined it is the record
    assert max(len(part) for part in line.split('"')[1::2]) <= 255
    assert 'dkim_selector = "2026a"' in result.stdout and f"{dkim.KEY_FILE}={path}" in result.stdout
    again = feedsvc(["dkim", "keygen", "--selector", "2026a"], env)
    assert again.exit_code == 1 and "exists" in again.stderr
    assert dkim.load_key(path.read_bytes(), dkim.RSA, "2026a", "test") == key  # the first key is kept


def test_keygen_ed25519(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "keys" / "ed.pem"
    result = feedsvc(["dkim", "keygen", "--selector", "2026a-ed", "--ed25519", "-o", str(out)], env)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = dkim.load_key(out.read_bytes(), dkim.ED25519, "2026a-ed", "test")
    assert _record_lines(result.stdout) == [f'2026a-ed._domainkey.{DOMAIN}. 3600 IN TXT "{key.txt}"']
    assert "dkim_ed25519_selector" in result.stdout and dkim.ED25519_KEY_FILE in result.stdout


def test_dns_prints_every_record_ready_to_paste(env: dict[str, str], signer: dkim.Signer) -> None:
    result = feedsvc(["dns"], env)
    assert result.exit_code == 0, result.output
    lines = _record_lines(result.stdout)
    assert lines[0] == f'{DOMAIN}. 3600 IN TXT "v=spf1 mx ~all"'
    assert lines[1].startswith(f"s1._domainkey.{DOMAIN}. 3600 IN TXT") and signer.keys[0].public[:200] in lines[1]
    assert lines[2] == f's1-ed25519._domainkey.{DOMAIN}. 3600 IN TXT "{signer.keys[1].txt}"'
    assert lines[3] == (
        f'_dmarc.{DOMAIN}. 3600 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{DOMAIN}; adkim=r; aspf=r"'
    )


def test_dns_check_passes_when_the_printed_zone_is_served(env: dict[str, str]) -> None:
    zone = feedsvc(["dns"], env).stdout
    with ZoneServer(zone) as server:
        result = feedsvc(["dns", "--check", "--nameserver", "127.0.0.1", "--port", str(server.port)], env)
    assert result.exit_code == 0, result.output
    assert result.stdout.count(";; ok ") == 4 and "PROBLEM" not in result.stdout


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda z: _drop(z, "_dmarc."), "_dmarc.feedsvc.example.org: missing: no v=DMARC1 record"),
        (lambda z: _drop(z, "s1-ed25519._domainkey"), "s1-ed25519._domainkey.feedsvc.example.org: missing"),
        (lambda z: z.replace("rua=mailto:dmarc-reports@feedsvc.example.org; ", ""), "has no rua="),
        (lambda z: z.replace("~all", "+all"), "lets any host send as this domain"),
        (lambda z: z + f'\n{DOMAIN}. 3600 IN TXT "v=spf1 -all"', "2 SPF records"),
        (lambda z: _drop(z, f'{DOMAIN}. 3600 IN TXT "v=spf1'), "missing: no v=spf1 record"),
        (lambda z: z.replace('"v=DKIM1; k=rsa; p=MII', '"v=DKIM1; k=rsa; p=MIJ'), "wrong: the published key"),
        (lambda z: z.replace("k=ed25519", "k=rsa"), "wrong: k=rsa, the key is k=ed25519"),
    ],
)
def test_dns_check_says_what_is_missing_or_wrong(env: dict[str, str], edit, says: str) -> None:
    zone = edit(feedsvc(["dns"], env).stdout)
    with ZoneServer(zone) as server:
        result = feedsvc(["dns", "--check", "--nameserver", "127.0.0.1", "--port", str(server.port)], env)
    assert result.exit_code == 1
    assert says in result.stderr and ";; PROBLEM" in result.stdout


def _drop(zone: str, start: str) -> str:
    return "\n".join(line for line in zone.splitlines() if not line.startswith(start))


def test_dns_check_of_a_server_that_does_not_answer(env: dict[str, str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = feedsvc(["dns", "--check", "--nameserver", "127.0.0.1", "--port", str(port), "--timeout", "0.3"], env)
    assert result.exit_code == 1 and "lookup failed" in result.stderr


def test_dns_says_when_dkim_does_not_align(tmp_path: Path, sqlite_url: str, dkim_env: dict[str, str]) -> None:
    config = write_config(tmp_path / "other", dkim_domain="relay.example.net", dkim_selector="s1")
    result = feedsvc(["dns"], environment(config, tmp_path, sqlite_url, **dkim_env))
    assert result.exit_code == 1
    assert "relay.example.net does not align with the From domain feedsvc.example.org" in result.stderr
    assert "s1._domainkey.relay.example.net. 3600 IN TXT" in result.stdout


def test_rotation_to_a_second_selector(
    tmp_path: Path, sqlite_url: str, key_files: dict[str, Path], seed_path: Path
) -> None:
    """Both selectors published; mail signed before the switch (s1) and after it (s2) verifies alike."""
    from feedsvc.content.reader import parse

    old = write_config(tmp_path / "old", dkim_domain=DOMAIN, dkim_selector="s1")
    new = write_config(tmp_path / "new", dkim_domain=DOMAIN, dkim_selector="s2")
    zones, signed = [], []
    for config, key in ((old, key_files["s1"]), (new, key_files["s2"])):
        env = environment(config, tmp_path, sqlite_url, **{dkim.KEY_FILE: str(key)})
        zones.append(feedsvc(["dns"], env).stdout)
        publication = load_publication(config)
        signer = dkim.Signer.from_environment(publication, {dkim.KEY_FILE: str(key)})
        assert signer is not None
        rendered = newsletter.render(parse(seed_path, publication), None, publication)
        links = mail_message.Links("https://n.example.org/manage/x", "https://n.example.org/unsubscribe/x")
        message = mail_message.build_message(rendered, "reader@example.org", links, publication)
        signed.append(signer.sign(mail_message.serialise(message)))
    both = zones[0] + "\n" + "\n".join(line for line in zones[1].splitlines() if "s2._domainkey" in line)
    with ZoneServer(both) as server:
        assert [verify_all(data, server.dkim_dnsfunc) for data in signed] == [[("rsa-sha256", True)]] * 2
        server.serve(zones[1])  # the old record withdrawn: only what was signed with s2 still verifies
        assert [verify_all(data, server.dkim_dnsfunc) for data in signed] == [
            [("rsa-sha256", False)],
            [("rsa-sha256", True)],
        ]
