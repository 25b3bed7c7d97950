"""Dashboard charts: well-formed SVG with a title and description, its numbers equal to the database's."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET  # our own markup, not untrusted input

from sqlalchemy import insert, select

from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import ACTIVE, UNSUBSCRIBED, Subscriber
from feedsvc.reports import charts, figures
from feedsvc.subscribers.subscriptions import set_sections

SVG = "{http://www.w3.org/2000/svg}"
NOW = dt.datetime(2024, 3, 6, 12, 0, tzinfo=dt.UTC)  # a Wednesday


def _add(
    db: Database, email: str, sections: list[str], confirmed: dt.datetime, left: dt.datetime | None = None
) -> None:
    with db.session() as s:
        sid = s.execute(
            insert(Subscriber)
            .values(
                email=email,
                status=UNSUBSCRIBED if left else ACTIVE,
                source="form",
                lang="zh-CN",
                token_version=1,
                bounce_count=0,
                created_at=confirmed - dt.timedelta(hours=1),
                updated_at=confirmed,
                confirmed_at=confirmed,
                unsubscribed_at=left,
            )
            .returning(Subscriber.id)
        ).scalar_one()
        set_sections(s, {sid: sections})


def test_charts_are_well_formed_and_match_the_database(db: Database, settings: Settings) -> None:
    pub = settings.publication
    _add(db, "a@example.org", ["industry"], NOW - dt.timedelta(weeks=3))
    _add(db, "b@example.org", ["industry", "research"], NOW - dt.timedelta(weeks=2), left=NOW - dt.timedelta(days=1))
    with db.session(readonly=True) as s:
        over_time = figures.subscribers_over_time(s, pub, NOW, "zh-CN")
        movements = figures.weekly_movements(s, pub, NOW, "en")
        funnel = figures.delivery_funnel(s, "zh-CN")
        active_now = s.scalar(select(Subscriber.id).where(Subscriber.status == ACTIVE))
    industry = over_time.series[pub.section_label("industry", "zh-CN")]
    assert industry[-4:] == [1, 2, 2, 1] and active_now is not None  # b left this week
    assert sum(movements.series["Unsubscribes"]) == 1 and sum(movements.series["Sign-ups"]) == 2
    assert funnel.labels == []
    for chart in (over_time, movements, funnel):
        root = ET.fromstring(str(charts.svg(chart)))  # noqa: S314
        assert root.tag == f"{SVG}svg"
        assert root.find(f"{SVG}title").text == chart.title and root.find(f"{SVG}desc").text
        bars = [int(r.get("data-value")) for r in root.iter(f"{SVG}rect") if r.get("data-value") is not None]
        by_group = [v for g in range(len(chart.labels)) for v in (chart.series[n][g] for n in chart.series)]
        assert bars == by_group
        table = ET.fromstring(str(charts.table(chart)))  # noqa: S314
        cells = [int(td.text) for td in table.iter("td") if td.get("class") == "n"]
        assert cells == by_group


def test_chart_text_is_escaped() -> None:
    chart = charts.Chart("x", "<b>&", "\"'<", ["<i>"], {"<s>": [3]})
    ET.fromstring(str(charts.svg(chart)))  # noqa: S314
    ET.fromstring(str(charts.table(chart)))  # noqa: S314
    assert "<i>" not in str(charts.svg(chart)) and "<b>" not in str(charts.table(chart))
