"""Admin pages for what came back: per issue the hard and soft bounces, policy blocks and complaints, with the
complaint rate against the 0.3% line; and a subscriber's bounce history in the server's own words. Routes on the
admin blueprint, so its sign-in rules apply unchanged. Read only: nothing here changes a subscriber."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from sqlalchemy import select

from feedsvc.bounces import stats
from feedsvc.bounces.classify import BouncePolicy
from feedsvc.bounces.scoring import current_score
from feedsvc.db.engine import utcnow
from feedsvc.db.models import Subscriber
from feedsvc.i18n import translate
from feedsvc.outbox import sends
from feedsvc.subscribers.addresses import InvalidAddress, normalise_email
from feedsvc.web.admin import bp
from feedsvc.web.database import get_db, get_settings
from feedsvc.web.language import page_language

# Kinds and effects of a bounce as the publisher reads them (English through the catalogue).
BOUNCE_LABELS = {
    "hard": "硬退信",
    "soft": "软退信",
    "policy": "策略拦截",
    "complaint": "投诉",
    "scored": "计入退信分",
    "bounced": "已标记为退信",
    "soft_today": "当日已计软退信",
    "unsubscribed": "已退订",
    "left": "已不再订阅",
    "policy_block": "不计入（发件方问题）",
}


@bp.app_context_processor
def _bounce_helpers() -> dict[str, Any]:
    """`issue_bounces(counts)` for the issue page; `bounce_label(word)`; the 0.3% line."""
    lang = page_language()

    def issue_bounces(counts: sends.IssueCounts) -> stats.IssueBounces:
        with get_db().session(readonly=True) as s:
            return stats.per_issue(s, {counts.number: counts.sent})[counts.number]

    return {
        "issue_bounces": issue_bounces,
        "bounce_label": lambda word: translate(BOUNCE_LABELS.get(word, word), lang),
        "complaint_line": stats.COMPLAINT_LINE,
    }


@bp.get("/bounces")
def bounces_page() -> str:
    """Every published issue's bounces and complaints; with ?email=, that subscriber's bounce history."""
    policy = BouncePolicy.from_env(get_settings().extra)
    asked = request.args.get("email", "").strip()
    found: Subscriber | None = None
    history: list[stats.HistoryEntry] = []
    problem = ""
    score = 0.0
    with get_db().session(readonly=True) as s:
        counts = sends.counts(s)
        per_issue = stats.per_issue(s, stats.sent_per_issue(counts))
        unmatched = stats.unmatched_reports(s)
        if asked:
            try:
                email = normalise_email(asked)
            except InvalidAddress:
                email, problem = "", "invalid"
            found = s.scalars(select(Subscriber).where(Subscriber.email == email)).one_or_none() if email else None
            if found is not None:
                history = stats.history(s, found.id)
                score = current_score(found, policy, utcnow())
            elif not problem:
                problem = "unknown"
    return render_template(
        "web/admin/bounces.html",
        issues=[per_issue[c.number] for c in counts],
        unmatched=unmatched,
        asked=asked,
        subscriber=found,
        history=history,
        score=score,
        limit=policy.limit,
        problem=problem,
    )
