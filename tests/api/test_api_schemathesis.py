"""schemathesis against /api/v1/openapi.json, in-process on the Flask app, with an owner's token (every
operation allowed): no 500s, and every answer (status, media type, body, headers) conforms to the document.

The schema is loaded from the document the app serves (fetched once through a test client; it needs no
database), then every case is sent to the app of the test, on SQLite and PostgreSQL. (schemathesis'
`from_fixture` does not work under pytest 9.)"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from api_support import bearer
from builders import make_app, make_settings
from flask import Flask
from hypothesis import HealthCheck, settings

from feedsvc.config import Settings
from feedsvc.staff import accounts, tokens
from feedsvc.staff.roles import OWNER

EXAMPLES = int(os.environ.get("FEEDSVC_API_FUZZ_EXAMPLES", "6"))  # more for a longer hunt; CI keeps it short


def _document() -> dict:
    with make_app(make_settings(Path(tempfile.mkdtemp(prefix="feedsvc-openapi-")))) as app:
        return app.test_client().get("/api/v1/openapi.json").get_json()


schema = schemathesis.openapi.from_dict(_document())
# A body can fit the schema and still not be an issue or a usable address: 422 is the right answer then. And a
# body too long for the schema can be too long for the server too: 413 is a right refusal of it.
schema.config.checks.positive_data_acceptance.expected_statuses.append("422")
schema.config.checks.negative_data_rejection.expected_statuses.append("413")


@pytest.fixture
def fuzzed_app(api_settings: Settings) -> Iterator[Flask]:
    """The app with a rate limit no fuzzing run reaches (the limit itself has its own test)."""
    relaxed = api_settings.with_overrides(extra={**api_settings.extra, "FEEDSVC_API_RATE_LIMIT": "1000000/60"})
    with make_app(relaxed) as app:
        yield app


@pytest.fixture
def owner_token(fuzzed_app: Flask) -> str:
    with fuzzed_app.extensions["feedsvc.db"].session() as s:
        accounts.add(s, "owner@example.org", OWNER, "test")
        secret, _ = tokens.create(s, "owner@example.org", "test", name="schemathesis")
    return secret


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("FEEDSVC_API_FUZZ_EXAMPLES"),
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_document(case: schemathesis.Case, fuzzed_app: Flask, owner_token: str) -> None:
    case.operation.app = case.operation.schema.app = fuzzed_app  # this test's app, for the checks' probes too
    case.call_and_validate(headers=bearer(owner_token))
