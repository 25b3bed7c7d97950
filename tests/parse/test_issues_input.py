"""Input forms the reader accepts, and what it does to unsafe content."""

from __future__ import annotations

import datetime as dt

from feedsvc.content.reader import parse, parse_bytes, parse_text

MINIMAL = """# 行业动态周报

第 12 期

2024 年 3 月 4 日

## 技术

### 一条新闻

正文。
"""


def test_crlf_and_bom_give_the_same_issue(seed_path, publication) -> None:
    raw = seed_path.read_bytes()
    expected = parse(seed_path, publication).to_dict()
    crlf = raw.replace(b"\n", b"\r\n")
    for variant in (crlf, b"\xef\xbb\xbf" + raw, b"\xef\xbb\xbf" + crlf):
        assert parse_bytes(variant, publication, source=str(seed_path)).to_dict() == expected
    text = raw.decode("utf-8")  # text already decoded elsewhere: a BOM and any line ending, old Mac CR too
    for variant in ("\ufeff" + text, text.replace("\n", "\r\n"), text.replace("\n", "\r")):
        assert parse_text(variant, publication, source=str(seed_path)).to_dict() == expected


def test_front_matter_overrides_number_date_and_subject(publication) -> None:
    text = "---\nnumber: 13\ndate: 2024-03-11\nsubject: 特刊：年度回顾\n---\n" + MINIMAL
    issue = parse_text(text, publication)
    assert (issue.number, issue.date, issue.subject) == (13, dt.date(2024, 3, 11), "特刊：年度回顾")
    assert issue.sections[0].items[0].title == "一条新闻"


def test_number_and_date_fall_back_to_the_file_name(tmp_path, publication) -> None:
    path = tmp_path / "2024-05-06-77.md"
    path.write_text("## 技术\n\n### 新闻\n\n正文。\n", encoding="utf-8")
    issue = parse(path, publication)
    assert (issue.number, issue.date, issue.title) == (77, dt.date(2024, 5, 6), "行业动态周报")


def test_raw_html_is_escaped_never_passed_through(publication) -> None:
    text = MINIMAL.replace("正文。", '正文<script>alert("x")</script><img src=x onerror=alert(1)>。')
    item = parse_text(text, publication).sections[0].items[0]
    assert "<script" not in item.html and "<img" not in item.html
    assert "&lt;script&gt;" in item.html
    assert '<script>alert("x")</script>' in item.text  # plain text keeps what was written


def test_only_http_and_mailto_links_survive(publication) -> None:
    body = (
        "[好](https://example.org/a) [信](mailto:a@example.org) [坏](javascript:alert(1)) "
        "[数据](data:text/html;base64,PHNjcmlwdD4=) [相对](/etc/passwd) 裸链接 https://example.com/x 。"
    )
    item = parse_text(MINIMAL.replace("正文。", body), publication).sections[0].items[0]
    hrefs = item.html.split('href="')[1:]
    assert [h.split('"')[0] for h in hrefs] == [
        "https://example.org/a",
        "mailto:a@example.org",
        "https://example.com/x",
    ]
    assert "javascript:" not in item.html.replace("[坏](javascript:alert(1))", "")
    assert 'href="javascript' not in item.html and 'href="data:' not in item.html
    assert "好 (https://example.org/a)" in item.text


def test_control_characters_are_dropped_with_a_warning(publication) -> None:
    text = MINIMAL.replace("正文。", "正\x00文\x0b。\x1f")
    issue = parse_text(text, publication)
    item = issue.sections[0].items[0]
    assert item.text == "正文。"
    assert any(w.line == 11 and "control character" in w.message for w in issue.warnings)


def test_unconfigured_section_like_heading_is_a_warning_with_its_line(publication) -> None:
    text = MINIMAL + "\n## 体育\n\n比赛结果。\n"
    issue = parse_text(text, publication)
    (warning,) = issue.warnings
    assert warning.line == 13 and "体育" in warning.message and "not configured" in warning.message
    assert [i.title for i in issue.sections[0].items] == ["一条新闻", "体育"]  # nothing is lost


def test_text_that_belongs_to_no_item_is_reported(publication) -> None:
    text = MINIMAL.replace("## 技术\n", "## 技术\n\n导语段落。\n")
    issue = parse_text(text, publication)
    assert any(w.line == 9 and "belongs to no item" in w.message for w in issue.warnings)


def test_colophon_marker_inside_an_item_stays_in_the_item(publication) -> None:
    text = MINIMAL.replace("正文。", "注：这是正文中的说明。\n\n后续正文。") + "\n**责编：**某人\n"
    issue = parse_text(text, publication)
    assert "注：这是正文中的说明。" in issue.sections[0].items[0].text
    assert issue.colophon == ("责编：某人",)


def test_latin_words_split_at_a_page_break_keep_their_space(publication) -> None:
    text = MINIMAL.replace("正文。", "The quick brown\n\nfox jumps.")
    assert parse_text(text, publication).sections[0].items[0].text == "The quick brown fox jumps."


def test_wrapped_lines_inside_a_cjk_paragraph_get_no_space(publication) -> None:
    text = MINIMAL.replace("正文。", "第一行\n第二行。")
    item = parse_text(text, publication).sections[0].items[0]
    assert item.text == "第一行第二行。" and "<p>第一行第二行。</p>" in item.html


def test_duplicate_titles_get_distinct_keys(publication) -> None:
    text = MINIMAL + "\n### 一条新闻\n\n另一条。\n"
    items = parse_text(text, publication).sections[0].items
    assert items[0].key != items[1].key and items[1].key == items[0].key + "-2"


def test_number_and_date_on_one_line_or_in_the_title(publication) -> None:
    one_line = MINIMAL.replace("第 12 期\n\n2024 年 3 月 4 日", "中国网络视听协会\n\n第 12 期 2024 年 3 月 4 日")
    issue = parse_text(one_line, publication)
    assert (issue.number, issue.date, issue.publisher) == (12, dt.date(2024, 3, 4), "中国网络视听协会")
    assert issue.warnings == ()
    in_title = "# 行业动态周报 第 12 期\n\n2024-03-04\n\n## 技术\n\n### 新闻\n\n正文。\n"
    issue = parse_text(in_title, publication)
    assert (issue.number, issue.date, issue.title) == (12, dt.date(2024, 3, 4), "行业动态周报")


def test_an_empty_section_like_heading_is_no_item(publication) -> None:
    text = MINIMAL + "\n## 观点\n\n### 一篇评论\n\n评论正文。\n"
    issue = parse_text(text, publication)
    assert [i.title for i in issue.sections[0].items] == ["一条新闻", "一篇评论"]
    (warning,) = issue.warnings
    assert warning.line == 13 and "观点" in warning.message and "left out" in warning.message


def test_an_item_without_text_is_a_warning(publication) -> None:
    issue = parse_text(MINIMAL + "\n### 只有标题\n", publication)
    assert [i.title for i in issue.sections[0].items] == ["一条新闻", "只有标题"]
    assert [(w.line, w.message) for w in issue.warnings] == [(13, "item '只有标题' has no text")]


def test_file_name_and_header_disagreeing_on_the_date_is_a_warning(tmp_path, publication) -> None:
    path = tmp_path / "2024-03-11-12.md"
    path.write_text(MINIMAL, encoding="utf-8")
    issue = parse(path, publication)
    assert issue.date == dt.date(2024, 3, 4)  # the header wins
    assert [(w.line, w.message) for w in issue.warnings] == [
        (5, "the header says 2024-03-04 but the file name says 2024-03-11")
    ]
