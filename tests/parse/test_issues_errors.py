"""Refusals: each names the file and, where it applies, the line; the CLI exits non-zero."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.cli import main
from feedsvc.content.model import Issue, ParseError
from feedsvc.content.reader import load_issues, parse, parse_text

GOOD = "# 行业动态周报\n\n第 7 期\n\n2024 年 2 月 5 日\n\n## 资本\n\n### 新闻\n\n正文。\n"


def write(tmp_path, name: str, data: str | bytes):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [
        ("", "is empty", None),
        ("\n\n  \n", "is empty", None),
        (
            "# 行业动态周报\n\n第 7 期\n\n2024 年 2 月 5 日\n\n## 体育\n\n### 新闻\n\n正文。\n",
            "has no configured section heading",
            None,
        ),
        (GOOD.replace("2 月 5 日", "2 月 30 日"), "is not a real date", 5),
        (GOOD.replace("## 资本\n\n", "### 早\n\n正文。\n\n## 资本\n\n"), "comes before any section heading", 7),
        ("---\nnumber: [1\n---\n" + GOOD, "front matter is not valid YAML", 2),
        ("---\nnumber: seven\n---\n" + GOOD, "front matter number", 2),
        (GOOD.replace("### 新闻", "### 新闻 {#bad key!}"), "item key", 9),
        (GOOD.replace("### 新闻", "### 新闻 {#capital}"), "is a section's name on the page", 9),
    ],
)
def test_refusals_name_file_and_line(tmp_path, publication, content, message, line) -> None:
    path = write(tmp_path, "2024-02-05-7.md", content)
    with pytest.raises(ParseError) as caught:
        parse(path, publication)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}:" if line else f"{path}:")
    assert caught.value.line == line


def test_gb18030_file_is_refused_with_a_hint(tmp_path, publication) -> None:
    path = write(tmp_path, "2024-02-05-7.md", GOOD.encode("gb18030"))
    with pytest.raises(ParseError) as caught:
        parse(path, publication)
    text = str(caught.value)
    assert text.startswith(f"{path}:1:") and "not UTF-8" in text and "GB18030" in text


def test_duplicate_issue_number_names_both_files(tmp_path, publication) -> None:
    first = write(tmp_path, "2024-02-05-7.md", GOOD)
    second = write(tmp_path, "2024-02-12-7b.md", GOOD.replace("2 月 5 日", "2 月 12 日"))
    with pytest.raises(ParseError) as caught:
        load_issues([first, second], publication)
    assert str(second) in str(caught.value) and str(first) in str(caught.value)


def test_duplicate_explicit_keys_are_refused(tmp_path, publication) -> None:
    text = GOOD + "\n### 另一条 {#same}\n\n正文。\n\n### 第三条 {#same}\n\n正文。\n"
    with pytest.raises(ParseError, match=r":17: item key \{#same\} is already used on line 13"):
        parse(write(tmp_path, "x.md", text), publication)


def test_cli_check_summary_and_json(tmp_path, seed_path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["check", str(seed_path)])
    assert result.exit_code == 0, result.output
    assert "第 398 期" in result.output and "行业 (industry): 12 items" in result.output
    result = runner.invoke(main, ["check", "--json", str(seed_path)])
    data = json.loads(result.output)
    assert data["number"] == 398 and sum(len(s["items"]) for s in data["sections"]) == 27


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "is empty"), (GOOD.replace("5 日", "32 日").encode(), ":5: "), (GOOD.encode("gb18030"), "GB18030")],
)
def test_cli_check_exits_non_zero_with_the_message(tmp_path, content, expected) -> None:
    path = write(tmp_path, "2024-02-05-7.md", content)
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code != 0
    assert str(path) in result.output and expected in result.output


def test_cli_check_refuses_duplicate_numbers(tmp_path) -> None:
    write(tmp_path, "2024-02-05-7.md", GOOD)
    write(tmp_path, "2024-02-12-8.md", GOOD)  # the header says 第 7 期 too
    result = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert result.exit_code != 0 and "issue number 7 is already used" in result.output


def test_cli_reports_warnings_with_lines(tmp_path) -> None:
    path = write(tmp_path, "2024-02-05-7.md", GOOD + "\n## 体育\n\n比赛。\n")
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 0
    assert f"warning: {path}:13:" in result.output


markdownish = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            [
                "## 行业",
                "## **研究**",
                "### 标题",
                "## **条目**",
                "# 标题",
                "第 3 期",
                "2024 年 1 月 22 日",
                "2024 年 2 月 31 日",
                "- ◆要点",
                "---",
                "**编辑部：**某",
                "{#k}",
                "## 摘要：",
                "\r\n",
                "\ufeff",
                "```",
                "> 引用",
                "[x](javascript:1)",
                "<b>",
                "\x00",
                "---\nnumber: x\n---",
            ]
        ),
    ),
    max_size=30,
).map("\n\n".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=markdownish)
def test_any_text_gives_an_issue_or_a_parse_error(text: str, publication) -> None:
    try:
        issue = parse_text(text, publication, source="fuzz.md")
    except ParseError as exc:
        assert str(exc).startswith("fuzz.md")
        return
    assert isinstance(issue, Issue) and issue.number > 0
    assert any(s.items for s in issue.sections)
    json.dumps(issue.to_dict(), ensure_ascii=False)


def test_cli_check_reports_every_bad_file_and_still_checks_the_good_ones(tmp_path, seed_path) -> None:
    write(tmp_path, "2024-02-05-7.md", GOOD.encode("gb18030"))
    write(tmp_path, "2024-02-12-8.md", GOOD.replace("第 7 期", "第 8 期").replace("5 日", "31 日"))
    result = CliRunner().invoke(main, ["check", str(tmp_path), str(seed_path)])
    assert result.exit_code == 1
    assert "2024-02-05-7.md:1: is not UTF-8" in result.output
    assert "2024-02-12-8.md:5: 2024 年 2 月 31 日 is not a real date" in result.output
    assert "第 398 期" in result.output and "研究 (research): 1 item\n" in result.output
