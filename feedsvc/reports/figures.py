"""The dashboard's figures from the database: subscribers per section over time, the weekly movements,
and each issue's delivery funnel. Weeks start on Monday in the publication's time zone."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedsvc.config import Publication
from feedsvc.db.models import ACTIVE, SUBSCRIBER_STATUSES, Subscriber, SubscriberSection
from feedsvc.i18n import translate
from feedsvc.outbox import sends
from feedsvc.reports.charts import Chart

WEEKS = 12


def subscriber_counts(session: Session) -> tuple[dict[str, int], dict[str, int]]:
    """Subscribers per status (every status listed), and active subscribers per section slug."""
    by_status = dict.fromkeys(SUBSCRIBER_STATUSES, 0)
    by_status.update(session.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status)).all())
    per_section = dict(
        session.execute(
            select(SubscriberSection.section, func.count())
            .join(Subscriber)
            .where(Subscriber.status == ACTIVE)
            .group_by(SubscriberSection.section)
        ).all()
    )
    return by_status, per_section


def _week(when: dt.datetime | None, publication: Publication) -> dt.date | None:
    if when is None:
        return None
    day = when.astimezone(publication.zone).date()
    return day - dt.timedelta(days=day.weekday())


def _weeks(now: dt.datetime, publication: Publication, count: int = WEEKS) -> list[dt.date]:
    last = _week(now, publication)
    assert last is not None
    return [last - dt.timedelta(weeks=count - 1 - i) for i in range(count)]


def _active_at(sub: Subscriber, end: dt.datetime) -> bool:
    """Whether `sub` was subscribed at `end`: confirmed before, not unsubscribed or bounced since (as far as
    the subscriber's last timestamps tell)."""
    if sub.confirmed_at is None or sub.confirmed_at >= end:
        return False
    left = [t for t in (sub.unsubscribed_at, sub.bounced_at) if t is not None and t > sub.confirmed_at]
    return not any(t < end for t in left)


def subscribers_over_time(session: Session, publication: Publication, now: dt.datetime, lang: str) -> Chart:
    """Subscribers per section at the end of each of the last WEEKS weeks."""
    weeks = _weeks(now, publication)
    rows = session.execute(select(Subscriber, SubscriberSection.section).join(SubscriberSection)).all()
    ends = [
        dt.datetime.combine(w + dt.timedelta(weeks=1), dt.time(), publication.zone).astimezone(dt.UTC) for w in weeks
    ]
    series = {
        publication.section_label(slug, lang): [
            sum(1 for sub, section in rows if section == slug and _active_at(sub, min(end, now))) for end in ends
        ]
        for slug in publication.slugs
    }
    return Chart(
        "subscribers",
        translate("订阅者（按栏目）", lang),
        translate("每周末各栏目的订阅人数", lang),
        [w.strftime("%m-%d") for w in weeks],
        series,
    )


def weekly_movements(session: Session, publication: Publication, now: dt.datetime, lang: str) -> Chart:
    """Sign-ups, confirmations, unsubscribes and bounces in each of the last WEEKS weeks."""
    weeks = _weeks(now, publication)
    subs = list(session.scalars(select(Subscriber)))

    def per_week(field: str) -> list[int]:
        return [sum(1 for s in subs if _week(getattr(s, field), publication) == w) for w in weeks]

    series = {
        translate("注册数", lang): per_week("created_at"),
        translate("确认数", lang): per_week("confirmed_at"),
        translate("退订数", lang): per_week("unsubscribed_at"),
        translate("退信数", lang): per_week("bounced_at"),
    }
    return Chart(
        "movements",
        translate("每周变化", lang),
        translate("每周的注册、确认、退订和退信人数", lang),
        [w.strftime("%m-%d") for w in weeks],
        series,
    )


def delivery_funnel(session: Session, lang: str) -> Chart:
    """Each published issue's mail: queued in all, sent, failed (bounced); complaints are not recorded."""
    found = list(reversed(sends.counts(session)[:WEEKS]))  # the newest WEEKS issues, oldest first
    series = {
        translate("排队", lang): [c.queued + c.sending + c.sent + c.failed + c.skipped + c.cancelled for c in found],
        translate("已发送", lang): [c.sent for c in found],
        translate("退信或失败", lang): [c.failed for c in found],
    }
    return Chart(
        "funnel",
        translate("每期投递", lang),
        translate("每期邮件：排队总数、已发送、退信或失败", lang),
        [str(c.number) for c in found],
        series,
    )


def send_status(session: Session, numbers: list[int] | None = None) -> list[dict[str, int | float]]:
    """Each published issue's mail by state and what came back: what `feedsvc status --json` and the API print."""
    from feedsvc.bounces import stats as bounce_stats

    found = sends.counts(session, numbers)
    came_back = bounce_stats.per_issue(session, bounce_stats.sent_per_issue(found))
    return [c.to_json() | came_back[c.number].to_json() for c in found]
