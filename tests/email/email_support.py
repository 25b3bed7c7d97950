"""Helpers shared by the email tests (imported as `email_support`; fixtures live in conftest.py)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from feedsvc.mail import message as mail_message

MANAGE = "https://news.example.org/manage/tok-123.abc_DEF"
UNSUBSCRIBE = "https://news.example.org/unsubscribe/tok-123.abc_DEF"

HOSTILE = """\
# 行业动态周报

中国网络视听协会

第 7 期

2024 年 2 月 5 日

## 摘要：

- ◆<script>alert("summary")</script>

## 行业

### <img src=x onerror=alert(1)> 标题 & "引号" FEEDSVC-RECIPIENT

正文 <script>alert("body")</script> [点我](javascript:alert(1)) <b>粗</b>，管理链接 FEEDSVC-MANAGE-URL。

</style><style>body { display: none }</style><a href="https://evil.example/">x</a>

## 技术

### 正常的条目

一段正文。

**编辑部：**<i>编辑</i>
"""


def parse_back(message: EmailMessage) -> EmailMessage:
    """The message as a receiver sees it: serialised to bytes, then parsed with the modern policy."""
    parsed = message_from_bytes(mail_message.serialise(message), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) bodies of a multipart/alternative message."""
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()
