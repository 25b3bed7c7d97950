"""The OpenAPI 3.1 document at /api/v1/openapi.json: served without a token, built from the route table the
blueprint registers (so the two cannot drift), with a bearer scheme, schemas for every body and problems."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from feedsvc.staff.roles import ACTIONS
from feedsvc.web.api.routes import ROUTES

METHODS = {"get", "post", "patch", "delete", "put"}


def _document(client: FlaskClient) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_the_document_lists_exactly_the_registered_operations(client: FlaskClient, app: Flask) -> None:
    document = _document(client)
    assert document["openapi"].startswith("3.1")
    described = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops if m in METHODS}
    served = {(r.method, "/api/v1" + r.path) for r in ROUTES} | {("GET", "/api/v1/openapi.json")}
    assert described == served
    # every described path is a rule of the app (the same table made both)
    rules = {
        re.sub(r"<int:(\w+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.op_")
    }
    assert rules == {p for _, p in described} - {"/api/v1/openapi.json"}


def test_every_operation_has_schemas_security_and_problems(client: FlaskClient) -> None:
    document = _document(client)
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert document["security"] == [{"bearer": []}]
    problem = document["components"]["schemas"]["Problem"]
    Draft202012Validator.check_schema(problem)
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path.endswith("/openapi.json"):
                assert operation["security"] == []
                continue
            assert operation["x-feedsvc-action"] in ACTIONS, (method, path)
            statuses = set(operation["responses"])
            assert {"400", "401", "403", "429", "500"} <= statuses, (method, path)
            for status, response in operation["responses"].items():
                for media, content in response.get("content", {}).items():
                    Draft202012Validator.check_schema(content["schema"] if "$ref" not in content["schema"] else problem)
                    if int(status) >= 400:
                        assert media == "application/problem+json"
            if "requestBody" in operation:
                Draft202012Validator.check_schema(operation["requestBody"]["content"]["application/json"]["schema"])
            if "{" in path:
                assert "404" in statuses


def test_the_document_needs_no_token_and_sets_no_cookie(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
