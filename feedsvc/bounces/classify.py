"""What a status means for the reader: the one rule for every bounce, from a DSN, an SES event or an SMTP reply.

- **hard** (5.1.x bad address, 5.2.1 mailbox disabled, 5.4.4 no route, …): +1 to the subscriber's score;
- **soft** (4.x.x, 5.2.2 mailbox full, 5.3.x the receiving system): +0.5, at most once a day;
- **policy** (5.7.x, spam blocks, block lists, DMARC, reputation): the sender's problem, recorded against the
  issue's send and never against the reader;
- **complaint** (an ARF abuse report): the reader unsubscribes at once;
- **delayed**, **auto_reply**, **none** (delivered, relayed, not-spam): recognised and changing nothing.

Pure: no database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from feedsvc.config import ConfigError
from feedsvc.outbox.retry import RetryPolicy

__all__ = [
    "AUTO_REPLY",
    "COMPLAINT",
    "DELAYED",
    "HARD",
    "NONE",
    "POLICY",
    "SOFT",
    "BouncePolicy",
    "classify_action",
    "classify_feedback",
    "classify_status",
    "enhanced_status",
]

HARD, SOFT, POLICY, COMPLAINT = "hard", "soft", "policy", "complaint"
DELAYED, AUTO_REPLY, NONE = "delayed", "auto_reply", "none"
RECORDED_KINDS = (HARD, SOFT, POLICY, COMPLAINT)
SCORE = {HARD: 1.0, SOFT: 0.5}

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY = re.compile(r"^\s*(?:[A-Za-z]+Failure:\s*)?(?:smtp;\s*)?([245]\d\d)\b")

# The server's words, in English and Chinese, for when the status code alone does not tell.
_POLICY_WORDS = re.compile(
    r"spam|junk|blocked|block ?list|blacklist|denylist|spamhaus|\brbl\b|\bdnsbl\b|dmarc|\bspf\b|dkim|"
    r"reputation|policy|content (?:denied|rejected)|unauthenticated|not allowed to send|poor reputation|"
    r"垃圾邮件|拒收|被拦截|黑名单|信誉|反垃圾",
    re.IGNORECASE,
)
_HARD_WORDS = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|does not exist|doesn't exist|"
    r"mailbox (?:not found|unavailable|does not exist)|invalid (?:recipient|mailbox|address)|"
    r"recipient (?:unknown|not found|address rejected)|address rejected|not a valid|account (?:disabled|closed)|"
    r"用户不存在|收件人不存在|地址不存在|邮箱不存在|帐号不存在|账号不存在|无此用户|不存在",
    re.IGNORECASE,
)
_SOFT_WORDS = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:storage|quota)|insufficient (?:storage|space)|"
    r"try again later|temporar|greylist|too many connections|rate limit|"
    r"空间不足|容量不足|邮箱已满|超过限额|稍后重试",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BouncePolicy:
    """Limits of the bounce rule: score limit, days until a score goes stale, the largest report read."""

    limit: int = 3
    stale_days: int = 30
    max_bytes: int = 10 * 1024 * 1024
    max_depth: int = 20  # MIME nesting read before a report is refused

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BouncePolicy:
        """FEEDSVC_BOUNCE_LIMIT and FEEDSVC_BOUNCE_STALE_DAYS (read once, by RetryPolicy), FEEDSVC_BOUNCE_MAX_BYTES."""
        retry = RetryPolicy.from_env(env)
        values = {"limit": retry.bounce_limit, "stale_days": retry.bounce_stale_days}
        for attr, name in (("max_bytes", "FEEDSVC_BOUNCE_MAX_BYTES"),):
            raw = env.get(name, "").strip()
            if raw:
                try:
                    values[attr] = int(raw)
                except ValueError:
                    raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
                if values[attr] < 1:
                    raise ConfigError(f"{name} must be at least 1")
        return cls(**values)


def enhanced_status(text: str) -> str:
    """The first RFC 3463 status (``5.1.1``) in `text`, or ""."""
    found = _STATUS.search(text or "")
    return ".".join(found.groups()) if found else ""


def classify_status(status: str, diagnostic: str = "", *, reply_code: int = 0) -> str:
    """hard, soft or policy for a failed delivery: its RFC 3463 `status`, else its SMTP reply, and the words."""
    words = diagnostic or ""
    status = status.strip() or enhanced_status(words)
    if not reply_code:
        found = _REPLY.match(words)
        reply_code = int(found.group(1)) if found else 0
    klass, subject, detail = [*status.split("."), "", "", ""][:3] if status else ("", "", "")
    if klass == "4" or (not klass and 400 <= reply_code < 500):
        return POLICY if subject == "7" or (not klass and _POLICY_WORDS.search(words)) else SOFT
    if klass == "5":
        if subject == "7":
            return POLICY
        if subject == "1" or (subject, detail) in (("2", "1"), ("4", "4"), ("4", "1")):
            return HARD
        if (subject, detail) == ("2", "2") or subject == "3":
            return SOFT
    # 5.0.0 and other generic codes, or a bare reply: the server's words decide, the reply class after them.
    if _POLICY_WORDS.search(words):
        return POLICY
    if _HARD_WORDS.search(words):
        return HARD
    if _SOFT_WORDS.search(words):
        return SOFT
    if klass == "5" or 500 <= reply_code < 600:
        return HARD
    return SOFT


def classify_action(action: str, status: str, diagnostic: str = "") -> str:
    """The kind of one DSN recipient: `Action` failed → by status; delayed → delayed; delivered and the rest → none."""
    action = (action or "").strip().lower()
    if action == "delayed" or (not action and status.startswith("4.") and not diagnostic):
        return DELAYED
    if action in ("delivered", "relayed", "expanded"):
        return NONE
    if action == "failed" or status.startswith(("5.", "4.")) or diagnostic:
        return classify_status(status, diagnostic)
    return NONE


def classify_feedback(feedback_type: str) -> str:
    """An ARF Feedback-Type: abuse, fraud, other → complaint; virus, auth-failure → policy; not-spam → none."""
    value = (feedback_type or "abuse").strip().lower()
    if value in ("not-spam",):
        return NONE
    if value in ("virus", "auth-failure", "dkim"):
        return POLICY
    return COMPLAINT
