"""The real seed issue, exactly as it arrived from PDF conversion, must come out right."""

from __future__ import annotations

import datetime as dt

import pytest

from feedsvc.content.model import Issue
from feedsvc.content.reader import parse, parse_bytes


def test_header(seed: Issue) -> None:
    assert seed.number == 398
    assert seed.date == dt.date(2024, 1, 22)
    assert seed.title == "行业动态周报"
    assert seed.publisher == "中国网络视听协会"
    assert seed.warnings == ()


def test_summary_has_the_four_highlights_without_bullets(seed: Issue) -> None:
    assert seed.summary == (
        "第五批国家文化和科技融合示范基地名单公布",
        "国家广播电视总局对《网络视听收视指标及计算方法》广播电视和网络视听行业标准报批稿进行公示",
        "粤港澳大湾区网络视听专业经纪机构 MCN 高级研修班举办",
        "OpenAI 首席执行官：人类水平的 AI 即将出现",
    )


def test_sections_in_order_with_their_item_counts(seed: Issue) -> None:
    assert [(s.name, s.slug, len(s.items)) for s in seed.sections] == [
        ("行业", "industry", 12),
        ("内容", "content", 5),
        ("技术", "technology", 4),
        ("资本", "capital", 2),
        ("人事", "people", 3),
        ("研究", "research", 1),
    ]


def test_bold_headings_are_items_and_bold_research_is_a_section(seed: Issue) -> None:
    industry = [i.title for i in seed.sections[0].items]
    assert industry[1] == "国家广播电视总局对《网络视听收视指标及计算方法》广播电视和网络视听行业标准报批稿进行公示"
    assert industry[6] == "快手和携程宣布达成战略合作"  # written ### **…**
    assert seed.sections[-1].items[0].title == "2023 年度我国短剧拍摄备案通过 3574 部，同比上涨 9%"
    assert all("*" not in item.title for _, item in seed.items)


@pytest.mark.parametrize(
    "joined", ["应当被认定为作品", "发布会，面向", "上海广播电视台（上海文化广播影视集团有限公司）", "从规模上看"]
)
def test_sentences_split_at_page_breaks_are_joined(seed: Issue, joined: str) -> None:
    matches = [item for _, item in seed.items if joined in item.text]
    assert len(matches) == 1
    assert joined in matches[0].html


def test_a_paragraph_that_really_ends_is_not_joined(seed: Issue) -> None:
    douyin = seed.sections[0].items[5]
    assert douyin.title.startswith("抖音：启动")
    assert douyin.html.count("<p>") == 3
    assert douyin.text.count("\n\n") == 2
    mcn = seed.sections[0].items[4]
    assert mcn.html.count("<p>") == 2  # 开班授课。 ends its paragraph


def test_colophon_is_kept_apart_from_the_last_item(seed: Issue) -> None:
    assert seed.colophon == (
        "编辑部：中国网络视听协会 对外合作部",
        "责编：余力 何紫薇 张轩豪 若斯",
        "复核：文超 王小野 张雁",
        "注：本周报由公开报道汇编，不代表中国网络视听协会观点。",
        "报：协会领导",
        "发：协会各会员单位；社团、媒体、制作机构、投资机构、技术公司、研究机构、高校等协作机构",
    )
    research = seed.sections[-1].items[0]
    assert research.text.endswith("同比上涨 20%。")
    for marker in ("编辑部", "责编", "复核", "协会领导"):
        assert marker not in research.text and marker not in research.html


def test_items_have_plain_text_and_safe_html(seed: Issue) -> None:
    for _, item in seed.items:
        assert item.text and "<" not in item.text and "**" not in item.text
        assert item.html.startswith("<p>") and "**" not in item.html


def test_keys_are_unique_and_stable_across_rebuilds(seed: Issue, seed_path, publication) -> None:
    keys = [item.key for _, item in seed.items]
    assert len(set(keys)) == len(keys) == 27
    again = parse(seed_path, publication)
    assert [item.key for _, item in again.items] == keys


def test_correcting_a_body_keeps_the_key_and_editing_a_title_changes_no_other(seed_path, publication) -> None:
    original = seed_path.read_text(encoding="utf-8")
    keys = {item.title: item.key for _, item in parse_bytes(original.encode(), publication).items}
    fixed_body = original.replace("虎牙计划与微信视频号展开直播合作", "虎牙计划与微信视频号开展直播合作")
    assert fixed_body != original
    after_body = {item.title: item.key for _, item in parse_bytes(fixed_body.encode(), publication).items}
    assert after_body == keys
    new_title = original.replace("### **虎牙将与微信视频号合作游戏直播**", "### **虎牙将与微信视频号合作开展游戏直播**")
    after_title = [item for _, item in parse_bytes(new_title.encode(), publication).items]
    changed = [i for i in after_title if i.title not in keys]
    assert len(changed) == 1 and changed[0].key != keys["虎牙将与微信视频号合作游戏直播"]
    assert all(keys[i.title] == i.key for i in after_title if i.title in keys)


def test_explicit_key_pins_an_item(seed_path, publication) -> None:
    text = seed_path.read_text(encoding="utf-8")
    text = text.replace("### 华为数字人表情调整专利公布", "### 华为数字人表情调整专利公布 {#huawei-patent}")
    text = text.replace("## **YouTube 据悉将裁员 100 人**", "## **YouTube 据悉将裁员 100 人 {#youtube-layoffs}**")
    issue = parse_bytes(text.encode(), publication)
    by_key = {item.key: item for _, item in issue.items}
    assert by_key["huawei-patent"].title == "华为数字人表情调整专利公布"
    assert by_key["youtube-layoffs"].title == "YouTube 据悉将裁员 100 人"


def test_to_dict_has_exactly_the_documented_shape(seed: Issue) -> None:
    data = seed.to_dict()
    assert list(data) == ["number", "date", "title", "publisher", "summary", "sections", "colophon", "warnings"]
    assert data["date"] == "2024-01-22"
    assert list(data["sections"][0]) == ["name", "slug", "items"]
    assert list(data["sections"][0]["items"][0]) == ["key", "title", "text", "html"]
