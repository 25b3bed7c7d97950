"""The admin dashboard's charts (feedsvc.reports), offered to its template; on the admin blueprint, so its
sign-in applies. Server-rendered SVG with a table beside each: no JavaScript."""

from __future__ import annotations

from typing import Any

from feedsvc.db.engine import utcnow
from feedsvc.reports import charts, figures
from feedsvc.web.admin import bp
from feedsvc.web.database import get_db, get_settings
from feedsvc.web.language import page_language


@bp.app_context_processor
def _chart_helpers() -> dict[str, Any]:
    """`dashboard_charts()`: (svg, table) per chart, for the dashboard."""

    def dashboard_charts() -> list[tuple[Any, Any]]:
        publication, lang, now = get_settings().publication, page_language(), utcnow()
        with get_db().session(readonly=True) as s:
            found = [
                figures.subscribers_over_time(s, publication, now, lang),
                figures.weekly_movements(s, publication, now, lang),
                figures.delivery_funnel(s, lang),
            ]
        return [(charts.svg(c), charts.table(c)) for c in found]

    return {"dashboard_charts": dashboard_charts}
