"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of every API request and response, and the small validator
that checks requests against them, so the document and the checks cannot disagree. No Flask."""

from __future__ import annotations

from typing import Any

from feedsvc.db.models import SUBSCRIBER_STATUSES

Schema = dict[str, Any]
MAX_INT = 2**31 - 1  # what the database's integer columns hold

STRING: Schema = {"type": "string"}
COUNT: Schema = {"type": "integer", "minimum": 0}
WHEN: Schema = {"type": "string", "format": "date-time"}
NULLABLE_WHEN: Schema = {"type": ["string", "null"], "format": "date-time"}
STATUS: Schema = {"type": "string", "enum": list(SUBSCRIBER_STATUSES)}
SLUG: Schema = {"type": "string", "minLength": 1, "maxLength": 64}
SLUGS: Schema = {"type": "array", "items": SLUG, "maxItems": 64}


def obj(properties: dict[str, Schema], required: tuple[str, ...] | None = None, **more: Any) -> Schema:
    """An object with exactly `properties` (all required unless `required` says which)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": False,
        **more,
    }


def array(items: Schema) -> Schema:
    """A JSON array of `items`."""
    return {"type": "array", "items": items}


PROBLEM = obj(
    {
        "type": STRING,
        "title": STRING,
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": STRING,
        "instance": STRING,
        "required_role": {"type": "string", "enum": ["viewer", "editor", "owner"]},
    },
    required=("type", "title", "status", "detail", "instance"),
    description="RFC 9457 problem details.",
)

# --- issues: the `feedsvc check --json` shape (content.model.Issue.to_dict) ---------------------------
ITEM = obj({"key": STRING, "title": STRING, "text": STRING, "html": STRING})
SECTION = obj({"name": STRING, "slug": STRING, "items": array(ITEM)})
ISSUE = obj(
    {
        "number": COUNT,
        "date": {"type": "string", "format": "date"},
        "title": STRING,
        "publisher": STRING,
        "summary": array(STRING),
        "sections": array(SECTION),
        "colophon": array(STRING),
        "warnings": array(STRING),
    },
    description="What `feedsvc check --json` prints for one file.",
)
CHECK_BODY = obj(
    {
        "markdown": {"type": "string", "maxLength": 100_000},
        "filename": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^[^/\\\x00]+\.md$"},
    },
    required=("markdown",),
)
# --- sends: the `feedsvc status --json` keys (reports.figures.send_status) ------------------------------
STATUS_KEYS = (
    "number",
    "queued",
    "sending",
    "sent",
    "failed",
    "skipped",
    "bounced_hard",
    "bounced_soft",
    "policy",
    "complaints",
)
SEND_STATUS = obj(
    dict.fromkeys(STATUS_KEYS, COUNT) | {"complaint_rate": {"type": "number", "minimum": 0}},
    description="What `feedsvc status --json` prints per issue.",
)
SEND = obj(
    {
        "status": SEND_STATUS,
        "cancelled": COUNT,
        "state": {"type": "string", "enum": ["running", "paused", "stopped", "finished"]},
    }
)
SEND_CHANGE = obj(
    {"number": COUNT, "state": {"type": "string", "enum": ["running", "paused", "stopped"]}, "messages": COUNT},
    description="`messages`: queued again (resume) or cancelled (cancel); 0 for pause.",
)
ISSUE_FILE = obj(
    {
        "file": STRING,
        "number": {"type": ["integer", "null"], "minimum": 0},
        "title": {"type": ["string", "null"]},
        "date": {"type": ["string", "null"], "format": "date"},
        "error": {"type": ["string", "null"]},
        "send": {"anyOf": [SEND, {"type": "null"}]},
    }
)
PUBLISHED = obj(
    {
        "number": COUNT,
        "enqueued": COUNT,
        "skipped_no_sections": COUNT,
        "already_published": {"type": "boolean"},
        "warnings": array(STRING),
    }
)
# --- subscribers --------------------------------------------------------------------------------------
SUBSCRIBER = obj(
    {
        "id": COUNT,
        "email": STRING,
        "status": STATUS,
        "sections": array(STRING),
        "source": STRING,
        "created_at": WHEN,
        "confirmed_at": NULLABLE_WHEN,
    }
)
SUBSCRIBER_PAGE = obj({"items": array(SUBSCRIBER), "total": COUNT, "offset": COUNT, "limit": COUNT})
ADD_BODY = obj(
    {
        "email": {"type": "string", "minLength": 1, "maxLength": 320},
        "sections": SLUGS,
        "consent": {"type": "boolean"},
    },
    required=("email",),
    description="`consent`: the person agreed elsewhere; active at once. Without it: pending, a confirmation "
    "mail is queued. `sections` empty or missing: every section.",
)
ADD_OUTCOMES = ("activated", "confirmation_queued", "unchanged", "left", "suppressed", "throttled")
ADDED = obj(
    {"outcome": {"type": "string", "enum": list(ADD_OUTCOMES)}, "subscriber": {"anyOf": [SUBSCRIBER, {"type": "null"}]}}
)
SECTIONS_BODY = obj({"sections": {**SLUGS, "minItems": 1}})
# --- stats --------------------------------------------------------------------------------------------
COUNTS: Schema = {"type": "object", "additionalProperties": COUNT}
STATS = obj(
    {
        "subscribers": obj({"by_status": COUNTS, "per_section": COUNTS}),
        "issues": obj({"published": COUNT}),
        "mail": obj(dict.fromkeys(("queued", "sending", "sent", "failed", "skipped", "cancelled"), COUNT)),
    }
)

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _is(value: Any, kind: str) -> bool:
    if kind == "integer" and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def problems(schema: Schema, value: Any, where: str = "body") -> list[str]:
    """What is wrong with `value` under `schema` (the subset of JSON Schema these schemas use); [] if nothing."""
    import re

    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, k) for k in kinds):
            return [f"{where}: must be {' or '.join(kinds)}"]
    found: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            found.append(f"{where}: length must be {schema.get('minLength', 0)}..{schema.get('maxLength', '')}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{where}: does not match {schema['pattern']}")
    if _is(value, "integer") and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        found.append(f"{where}: must be within {schema.get('minimum', '')}..{schema.get('maximum', '')}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            found.append(f"{where}: must have {schema.get('minItems', 0)}..{schema.get('maxItems', '')} items")
        for i, item in enumerate(value):
            found += problems(schema.get("items", {}), item, f"{where}[{i}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{where}: {name} is required" for name in schema.get("required", ()) if name not in value]
        if schema.get("additionalProperties") is False:
            found += [f"{where}: unknown field {name!r}" for name in value if name not in properties]
        for name, item in value.items():
            if name in properties:
                found += problems(properties[name], item, f"{where}.{name}")
    return found
