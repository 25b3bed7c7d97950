"""`feedsvc build`: the files it writes, atomic replacement, byte-determinism, and minimal change."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.site.build import build
from feedsvc.site.writer import BuildResult, SiteError, open_site, store_dir, write_site

SiteReader = Callable[[Path], dict[str, bytes]]

EXPECTED = {
    *(
        f"feeds/{n}.{e}"
        for n in ("industry", "content", "technology", "capital", "people", "research", "all", "issues")
        for e in ("atom", "json")
    ),
    "issues/index.html",
    "issues/index.en.html",
    "issues/398.html",
    "issues/398.en.html",
    "site.json",
    "manifest.json",
    "feeds.opml",
}


def run_build(settings: Settings, *args: str) -> tuple[int, str]:
    """`feedsvc build` through click, with this test's feedsvc.toml and folders."""
    env = {
        "FEEDSVC_VAR_DIR": str(settings.var_dir),
        "FEEDSVC_SITE_DIR": str(settings.site_dir),
        "FEEDSVC_ISSUES_DIR": str(settings.issues_dir),
        "FEEDSVC_SECRET_KEY": "test-secret",
        "FEEDSVC_TEMPLATES_DIR": str(settings.templates_dir),
        "FEEDSVC_CONFIG": str(settings.root / "feedsvc.toml"),
    }
    result = CliRunner().invoke(main, ["build", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_build_writes_the_site_where_serve_looks(site_settings: Settings, read_site: SiteReader) -> None:
    code, output = run_build(site_settings)
    assert code == 0, output
    assert "built 1 issue(s)" in output
    assert site_settings.site_dir.is_symlink()
    assert set(read_site(site_settings.site_dir)) == EXPECTED


def test_cli_build_options(site_settings: Settings, tmp_path: Path, read_site: SiteReader) -> None:
    out = tmp_path / "public"
    code, output = run_build(site_settings, "--issues", str(site_settings.issues_dir), "--out", str(out))
    assert code == 0, output
    assert set(read_site(out)) == EXPECTED
    assert not site_settings.site_dir.exists()


def test_two_builds_are_byte_identical(site_settings: Settings, tmp_path: Path, read_site: SiteReader) -> None:
    run_build(site_settings, "--out", str(tmp_path / "one"))
    run_build(site_settings, "--out", str(tmp_path / "two"))
    assert read_site(tmp_path / "one") == read_site(tmp_path / "two")


def test_a_rebuild_of_the_same_input_changes_nothing(built: Settings) -> None:
    generation = os.path.realpath(built.site_dir)
    mtime = (built.site_dir / "feeds" / "all.atom").stat().st_mtime_ns
    code, output = run_build(built)
    assert code == 0 and "nothing changed" in output
    assert os.path.realpath(built.site_dir) == generation
    assert (built.site_dir / "feeds" / "all.atom").stat().st_mtime_ns == mtime


def test_a_parse_error_leaves_the_previous_site_untouched(built: Settings, read_site: SiteReader) -> None:
    before = read_site(built.site_dir)
    target = os.readlink(built.site_dir)
    (built.issues_dir / "2024-02-30-400.md").write_text("# 行业动态周报\n\n第 400 期\n\n2024 年 2 月 30 日\n", "utf-8")
    code, output = run_build(built)
    assert code != 0
    assert "2024-02-30-400.md" in output and "is not a real date" in output
    assert "previous site is unchanged" in output
    assert os.readlink(built.site_dir) == target
    assert read_site(built.site_dir) == before
    assert sorted(p.name for p in store_dir(built.site_dir).iterdir() if p.is_dir()) == [Path(target).name]


def test_a_failed_write_leaves_the_previous_site_untouched(built: Settings, read_site: SiteReader) -> None:
    before, target = read_site(built.site_dir), os.readlink(built.site_dir)
    with pytest.raises(SiteError):
        write_site({"feeds/all.atom": b"new", "../escape": b"x"}, built.site_dir)
    with pytest.raises(FileExistsError):  # a file where a folder must go: fails half-way through writing
        write_site({"feeds": b"a file", "feeds/all.atom": b"new"}, built.site_dir)
    assert os.readlink(built.site_dir) == target
    assert read_site(built.site_dir) == before
    leftovers = [p.name for p in store_dir(built.site_dir).iterdir() if p.name.startswith("tmp-")]
    assert leftovers == []


def test_a_template_error_leaves_the_previous_site_untouched(built: Settings, tmp_path: Path) -> None:
    templates = tmp_path / "broken-templates" / "web"
    shutil.copytree(built.templates_dir / "web", templates)
    target = os.readlink(built.site_dir)
    broken = built.with_overrides(templates_dir=templates.parent)
    (templates / "issue.html").write_text("{% extends 'web/base.html' %}{% block content %}{{ issue.nope }}", "utf-8")
    code, output = run_build(broken)
    assert code != 0
    assert "issue.html:1" in output and "previous site is unchanged" in output
    (templates / "issue.html").write_text(
        "{% extends 'web/base.html' %}{% block content %}{{ issue.nope() }}{% endblock %}", "utf-8"
    )
    code, output = run_build(broken)
    assert code != 0
    assert "template web/issue.html" in output and "nope" in output
    assert os.readlink(built.site_dir) == target


def test_adding_an_issue_changes_only_what_it_must(
    built: Settings, write_issue: Callable[..., Path], read_site: SiteReader
) -> None:
    before = read_site(built.site_dir)
    stats = {path: (built.site_dir / path).stat() for path in before}
    write_issue(399, dt.date(2024, 1, 29), {"技术": [("新的一条技术动态", "正文。")]})
    code, output = run_build(built)
    assert code == 0, output
    after = read_site(built.site_dir)
    changed = {path for path in after if before.get(path) != after[path]}
    assert changed == {
        *(f"feeds/{n}.{e}" for n in ("technology", "all", "issues") for e in ("atom", "json")),
        "issues/index.html",
        "issues/index.en.html",
        "issues/399.html",
        "issues/399.en.html",
        "site.json",
        "manifest.json",
    }
    assert f"{len(changed)} changed" in output
    for path in set(before) - changed:  # unchanged files are the same inode: same mtime, same Last-Modified
        now = (built.site_dir / path).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stats[path].st_ino, stats[path].st_mtime_ns), path


def test_old_generations_are_collected(built: Settings, write_issue: Callable[..., Path]) -> None:
    for number in (399, 400, 401):
        write_issue(number, dt.date(2024, 2, number - 390), {"人事": [(f"任命 {number}", "正文。")]})
        assert run_build(built)[0] == 0
    generations = [p for p in store_dir(built.site_dir).iterdir() if p.is_dir()]
    assert len(generations) == 2
    assert Path(os.path.realpath(built.site_dir)) in generations


def test_an_empty_issues_folder_builds_an_empty_site(site_settings: Settings, read_site: SiteReader) -> None:
    (site_settings.issues_dir / "2024-01-22-398.md").unlink()
    code, output = run_build(site_settings)
    assert code == 0, output
    files = read_site(site_settings.site_dir)
    assert "issues/398.html" not in files and "feeds/all.atom" in files


def test_a_missing_issues_folder_is_an_error(site_settings: Settings, tmp_path: Path) -> None:
    code, output = run_build(site_settings, "--issues", str(tmp_path / "nowhere"))
    assert code != 0 and "no such folder" in output


def test_a_foreign_folder_is_never_replaced(site_settings: Settings, tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me", "utf-8")
    code, output = run_build(site_settings, "--out", str(foreign))
    assert code != 0 and "did not build" in output
    assert (foreign / "precious.txt").read_text("utf-8") == "keep me"


def test_an_empty_or_earlier_plain_site_folder_is_taken_over(
    site_settings: Settings, tmp_path: Path, read_site: SiteReader
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_build(site_settings, "--out", str(empty))[0] == 0
    assert empty.is_symlink()
    plain = tmp_path / "plain"
    (plain / "feeds").mkdir(parents=True)
    (plain / "site.json").write_text("{}", "utf-8")
    assert run_build(site_settings, "--out", str(plain))[0] == 0
    assert plain.is_symlink() and set(read_site(plain)) == EXPECTED


def test_a_build_reads_the_issues_only_once_it_holds_the_lock(
    built: Settings, write_issue: Callable[..., Path]
) -> None:
    """Two builds at once (a cron build and a publish) cannot swap in an older reading of issues/."""
    results: list[BuildResult] = []
    with open_site(built.site_dir):  # holds the build lock
        racer = threading.Thread(
            target=lambda: results.append(
                build(built.issues_dir, built.site_dir, built.publication, built.templates_dir)
            )
        )
        racer.start()
        time.sleep(0.3)  # the racing build has started and is waiting for the lock
        assert results == []
        write_issue(399, dt.date(2024, 1, 29), {"技术": [("新的一条", "正文。")]})
    racer.join(timeout=30)
    (result,) = results
    assert result.issues == 2
    assert (built.site_dir / "issues" / "399.html").exists()
