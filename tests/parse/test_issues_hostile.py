"""Hostile front matter and remote images: every value the database cannot hold is refused with file and line."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.config import ConfigError, Publication, load_publication
from feedsvc.content.model import MAX_ISSUE_NUMBER, Issue, ParseError
from feedsvc.content.reader import parse_text

BODY = "# 行业动态周报\n\n## 资本\n\n### 新闻\n\n正文。\n"
GOOD = "# 行业动态周报\n\n第 7 期\n\n2024 年 2 月 5 日\n\n## 资本\n\n### 新闻\n\n正文。\n"


def front(text: str) -> str:
    return f"---\n{text}\n---\n{BODY}"


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [
        (front("number: 7\ndate: 2024-02-30"), "'2024-02-30' cannot be read", 3),
        (front("date: 0000-01-01\nnumber: 7"), "cannot be read", 2),
        (front("number: 99999999999999999999999999999\ndate: 2024-02-05"), "is too large (at most 2147483647)", 2),
        (front(f"number: {MAX_ISSUE_NUMBER + 1}\ndate: 2024-02-05"), f"issue number {MAX_ISSUE_NUMBER + 1} is", 2),
        (front("date: 2024-02-05\nnumber: " + "9" * 5000), "cannot be read", 3),
        (front("date: 2024-02-05\nnumber: '" + "9" * 5000 + "'"), "issue number is too large", 3),
        (front("date: 2024-02-05\nnumber: '²'"), "is not a whole number", 3),
        (front("date: 2024-02-05\nnumber: 7\nsubject: [a, b]"), "subject must be text", 4),
        (front("date: [2024]\nnumber: 7"), "front matter date of type list is not YYYY-MM-DD", 2),
        (GOOD.replace("第 7 期", "第 " + "9" * 5000 + " 期"), "issue number is too large", 3),
        (GOOD.replace("第 7 期", "第 2147483648 期"), "issue number 2147483648 is too large", 3),
    ],
)
def test_values_the_database_cannot_hold_are_refused_with_their_line(publication, content, message, line) -> None:
    with pytest.raises(ParseError) as caught:
        parse_text(content, publication, source="hostile.md")
    assert message in str(caught.value)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"hostile.md:{line}:")


def test_the_largest_number_the_database_holds_is_accepted(publication) -> None:
    issue = parse_text(front(f"number: {MAX_ISSUE_NUMBER}\ndate: 2024-02-05"), publication, source="x.md")
    assert issue.number == MAX_ISSUE_NUMBER


def test_a_huge_alias_tree_is_named_by_its_type_not_printed(publication) -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    with pytest.raises(ParseError, match="of type list"):
        parse_text(front(laughs + "number: *i\ndate: 2024-02-05"), publication, source="x.md")


scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=2**31 - 3, max_value=2**31 + 3),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.text(max_size=30),
    st.dates(),
    st.datetimes(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
raw_values = st.one_of(
    st.sampled_from(
        ["2024-02-30", "2024-13-01", "0000-01-01", "9999-12-31", "2024-2-5", "!!binary AAAA", "&a x", "*b"]
    ),
    st.from_regex(r"[0-9]{1,40}", fullmatch=True),
    st.from_regex(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}", fullmatch=True),
    st.text(alphabet="0123456789-:.年月日 '\"[]{}!&*", max_size=20),
)


def _line(key: str, value: object, raw: bool) -> str:
    if raw:
        return f"{key}: {value}"
    return yaml.safe_dump({key: value}, allow_unicode=True, default_flow_style=True).strip()[1:-1]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.dictionaries(
        st.sampled_from(["number", "date", "subject", "type"]),
        st.one_of(scalars.map(lambda v: (v, False)), raw_values.map(lambda v: (v, True))),
    )
)
def test_any_front_matter_gives_an_issue_or_a_parse_error(values, publication) -> None:
    lines = "\n".join(_line(key, value, raw) for key, (value, raw) in values.items())
    try:
        issue = parse_text(f"---\n{lines}\n---\n" + GOOD, publication, source="fuzz.md")
    except ParseError as exc:
        assert str(exc).startswith("fuzz.md")
        return
    assert isinstance(issue, Issue)
    assert 0 < issue.number <= MAX_ISSUE_NUMBER
    assert isinstance(issue.date, dt.date) and not isinstance(issue.date, dt.datetime)
    assert issue.subject is None or (isinstance(issue.subject, str) and "\n" not in issue.subject)


IMAGES = (
    "# 行业动态周报\n\n第 7 期\n\n2024 年 2 月 5 日\n\n## 资本\n\n### 新闻\n\n"
    "正文。\n\n图一 ![远端](http://tracker.example/pixel.gif) 与\n"
    "![安全](https://cdn.example/ok.png) 和 ![链接](//cdn.example/x.png)。\n"
)


def test_only_https_images_are_kept_and_the_rest_are_warned_about_with_their_line(publication) -> None:
    issue = parse_text(IMAGES, publication, source="img.md")
    html = issue.sections[0].items[0].html
    assert "http://tracker.example" not in html and "远端" in html
    assert '<img src="https://cdn.example/ok.png" alt="安全"' in html
    assert html.count("<img") == 1  # a protocol-relative src is no link at all: it stays text
    warnings = [str(w) for w in issue.warnings]
    assert any(w.startswith("line 13: image 'http://tracker.example/pixel.gif' is left out") for w in warnings)


def test_images_none_keeps_no_image(publication: Publication) -> None:
    issue = parse_text(IMAGES, replace(publication, images="none"), source="img.md")
    assert "<img" not in issue.sections[0].items[0].html
    assert sum("is left out" in str(w) for w in issue.warnings) == 2


def test_the_image_setting_is_read_from_feedsvc_toml(tmp_path, seed_path) -> None:
    source = (seed_path.parent.parent / "feedsvc.toml").read_text(encoding="utf-8")
    config = tmp_path / "feedsvc.toml"
    assert 'images = "https"' in source
    config.write_text(source.replace('images = "https"', 'images = "none"'), encoding="utf-8")
    assert load_publication(config).images == "none"
    config.write_text(source.replace('images = "https"', 'images = "http"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[content\] images"):
        load_publication(config)
