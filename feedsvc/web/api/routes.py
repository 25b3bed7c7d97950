"""The API's one route table: method, path, the ACTIONS key it needs, its handler and its schemas.

The blueprint registers exactly these routes and the OpenAPI document is built from exactly these, so the
document describes what the API does; the tests walk the same table for the role checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from feedsvc.web.api import handlers
from feedsvc.web.api import schemas as sc

JSON, CSV = "application/json", "text/csv"
PATH_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Param:
    """A query parameter: its name, schema and meaning."""

    name: str
    schema: sc.Schema
    description: str


@dataclass(frozen=True)
class Route:
    """One operation of /api/v1."""

    method: str
    path: str  # under /api/v1, OpenAPI style: /sends/{number}
    action: str  # the feedsvc.staff.roles.ACTIONS key it needs
    handler: Callable[[handlers.Call], Any]
    summary: str
    response: sc.Schema | None  # None: no body (204)
    status: int = 200
    media: str = JSON
    body: sc.Schema | None = None
    query: tuple[Param, ...] = ()
    problems: tuple[int, ...] = ()  # beyond those every operation can answer
    also: tuple[int, ...] = ()  # other success statuses, same body

    @property
    def operation_id(self) -> str:
        """The operation's name in the document: the handler's."""
        return self.handler.__name__

    @property
    def path_params(self) -> list[str]:
        """The names in the path, in order."""
        return PATH_PARAM.findall(self.path)

    @property
    def writes(self) -> bool:
        """Whether the operation changes something (and is audited)."""
        return self.method != "GET" and self.action != "read"


NUMBER_PROBLEMS = (404,)
OFFSET = Param("offset", {"type": "integer", "minimum": 0, "maximum": sc.MAX_INT, "default": 0}, "Rows to skip.")
LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Rows per page.")
STATUS_FILTER = Param("status", sc.STATUS, "Only subscribers with this status.")
SECTION_FILTER = Param("section", sc.SLUG, "Only subscribers who chose this section (slug).")

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/issues",
        "read",
        handlers.list_issues,
        "Issue files in issues/, with their sends",
        sc.array(sc.ISSUE_FILE),
    ),
    Route(
        "POST",
        "/issues/check",
        "read",
        handlers.check_issue,
        "Check a Markdown issue: the `feedsvc check --json` shape",
        sc.ISSUE,
        body=sc.CHECK_BODY,
        problems=(413, 422),
    ),
    Route(
        "POST",
        "/issues/{number}/publish",
        "publish",
        handlers.publish_issue,
        "Publish the issue file with this number: build the site, queue its mail",
        sc.PUBLISHED,
        problems=(404, 409),
    ),
    Route(
        "GET",
        "/sends",
        "read",
        handlers.list_sends,
        "Every published issue's mail: `feedsvc status --json`",
        sc.array(sc.SEND_STATUS),
    ),
    Route("GET", "/sends/{number}", "read", handlers.get_send, "One issue's send", sc.SEND, problems=(404,)),
    *(
        Route(
            "POST",
            f"/sends/{{number}}/{action}",
            action,
            handlers.control_send(action),
            f"{action.capitalize()} a send",
            sc.SEND_CHANGE,
            problems=(404, 409),
        )
        for action in ("pause", "resume", "cancel")
    ),
    Route(
        "GET",
        "/subscribers",
        "read",
        handlers.list_subscribers,
        "Subscribers, a page at a time",
        sc.SUBSCRIBER_PAGE,
        query=(STATUS_FILTER, SECTION_FILTER, OFFSET, LIMIT),
    ),
    Route(
        "POST",
        "/subscribers",
        "subscribers_add",
        handlers.add_subscriber,
        "Add a subscriber (with consent: active; without: pending, confirmation mailed)",
        sc.ADDED,
        status=201,
        also=(200,),
        body=sc.ADD_BODY,
        problems=(413, 422),
    ),
    Route(
        "GET",
        "/subscribers/export",
        "subscribers_export",
        handlers.export_subscribers,
        "Every subscriber as CSV (email, status, sections)",
        {"type": "string"},
        media=CSV,
        query=(STATUS_FILTER,),
    ),
    Route(
        "PATCH",
        "/subscribers/{id}",
        "subscribers_change",
        handlers.change_sections,
        "Change a subscriber's sections",
        sc.SUBSCRIBER,
        body=sc.SECTIONS_BODY,
        problems=(404, 413, 422),
    ),
    Route(
        "POST",
        "/subscribers/{id}/unsubscribe",
        "subscribers_unsubscribe",
        handlers.unsubscribe,
        "Unsubscribe a subscriber",
        sc.SUBSCRIBER,
        problems=(404,),
    ),
    Route(
        "DELETE",
        "/subscribers/{id}",
        "subscribers_erase",
        handlers.erase,
        "Erase a subscriber and everything kept about them",
        None,
        status=204,
        problems=(404,),
    ),
    Route("GET", "/stats", "read", handlers.stats, "Subscribers, issues and mail in figures", sc.STATS),
)
