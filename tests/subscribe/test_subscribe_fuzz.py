"""Hypothesis: whatever arrives in the forms, URLs and bodies, the subscription pages never answer 500."""

from __future__ import annotations

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from subscribe_support import csrf

from feedsvc.db.models import Subscriber
from feedsvc.ratelimit import Limit
from feedsvc.subscribers import subscriptions, tokens

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
SLUGS = st.sampled_from(["industry", "content", "technology", "capital", "people", "research"])
FIELD = st.one_of(TEXT, SLUGS, st.just(""), st.emails().map(str))
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PATHS = st.sampled_from(["/subscribe", "/manage", "/confirm/{}", "/manage/{}", "/unsubscribe/{}"])


@pytest.fixture
def fuzz_app(app: Flask) -> Flask:
    app.extensions["feedsvc.signup_limit"] = Limit(1_000_000, 60)
    return app


@FUZZ
@given(
    path=PATHS,
    token=TEXT.filter(lambda t: "/" not in t and t not in ("", ".", "..")),
    email=FIELD,
    sections=st.lists(st.one_of(SLUGS, TEXT), max_size=8),
    extra=st.dictionaries(st.sampled_from(["action", "website", "confirm", "List-Unsubscribe", "lang", "x"]), FIELD),
    with_token=st.booleans(),
    lang=st.sampled_from(["", "?lang=en", "?lang=zh-CN", "?lang=%00", "?lang=xx"]),
)
def test_form_posts_never_fail(
    fuzz_app: Flask,
    path: str,
    token: str,
    email: str,
    sections: list[str],
    extra: dict[str, str],
    with_token: bool,
    lang: str,
) -> None:
    client = fuzz_app.test_client()
    form: dict[str, object] = {"email": email, "sections": sections, **extra}
    if with_token:
        form["csrf_token"] = csrf(client)
    url = path.format(token) + lang
    for response in (client.post(url, data=form), client.get(url)):
        assert response.status_code < 500, (url, form, response.status_code)


@FUZZ
@given(
    body=st.binary(max_size=500),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", ""]
    ),
)
def test_raw_bodies_never_fail(fuzz_app: Flask, body: bytes, content_type: str) -> None:
    client = fuzz_app.test_client()
    for path in ("/subscribe", "/manage", "/unsubscribe/abc.def.ghi"):
        response = client.post(path, data=body, content_type=content_type)
        assert response.status_code < 500, (path, body, content_type)


@FUZZ
@given(
    purpose=st.sampled_from(["confirm", "manage", "unsubscribe"]),
    action=st.one_of(st.sampled_from(["sections", "unsubscribe", "resubscribe", "export", "reset", "erase"]), TEXT),
    sections=st.lists(st.one_of(SLUGS, TEXT), max_size=8),
    extra=st.dictionaries(st.sampled_from(["confirm", "List-Unsubscribe", "website"]), FIELD),
)
def test_actions_with_valid_tokens_never_fail(
    fuzz_app: Flask, purpose: str, action: str, sections: list[str], extra: dict[str, str]
) -> None:
    settings = fuzz_app.extensions["feedsvc.settings"]
    database = fuzz_app.extensions["feedsvc.db"]
    with database.session() as s:
        subscriptions.subscribe(s, settings, "fuzz@example.org", ["industry"])
        sub = s.scalars(select(Subscriber).where(Subscriber.email == "fuzz@example.org")).one()
        token = tokens.make_token(settings, purpose, sub.id, sub.token_version)
    client = fuzz_app.test_client()
    form = {"csrf_token": csrf(client), "action": action, "sections": sections, **extra}
    for response in (client.post(f"/{purpose}/{token}", data=form), client.get(f"/{purpose}/{token}")):
        assert response.status_code < 500, (purpose, form, response.status_code)
