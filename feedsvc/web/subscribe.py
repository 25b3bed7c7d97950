"""Subscription pages: sign up, confirm, manage, unsubscribe (one-click too). A thin shell over feedsvc.subscribers.

Rules every handler keeps:

- GET never changes anything (mail scanners prefetch links): confirm and unsubscribe show a button.
- Every form POST carries a CSRF token tied to the session cookie, except the RFC 8058 one-click
  unsubscribe (``List-Unsubscribe=One-Click``), which needs no cookie and no token and answers 200.
- Sign-up and manage-link requests give the same answer whatever the address's state (no enumeration),
  in the same time: the request is queued, and `feedsvc worker` decides it after the answer
  (feedsvc.subscribers.requests).
  They are rate limited per client (a counter in the database, shared by every process), and have a honeypot.
- Token pages are never cached and never leak their URL in a Referer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from feedsvc import ratelimit
from feedsvc.config import Settings
from feedsvc.db.models import ACTIVE, Subscriber
from feedsvc.subscribers import privacy, requests, subscriptions, tokens
from feedsvc.subscribers.addresses import InvalidAddress, UnsendableAddress, normalise_email
from feedsvc.subscribers.subscriptions import NoSections
from feedsvc.subscribers.tokens import TokenError
from feedsvc.web.database import get_db, get_settings
from feedsvc.web.language import page_language, t
from feedsvc.web.security import LINK_PAGE_POLICY, client_address, csrf_ok, csrf_token

bp = Blueprint("subscribe", __name__)

HONEYPOT_FIELD = "website"
DEFAULT_SIGNUP_LIMIT = "10/600"
# On top of the app's policy (feedsvc.web.security): token pages are never cached, indexed or given images.
SECURITY_HEADERS = {
    "Content-Security-Policy": LINK_PAGE_POLICY,
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}


def init_app(app: Flask, settings: Settings) -> None:
    """The sign-up limit and the template helpers the subscribe form uses."""
    signup_limit = ratelimit.Limit.parse(settings.extra.get("FEEDSVC_SIGNUP_RATE_LIMIT", DEFAULT_SIGNUP_LIMIT))
    app.extensions["feedsvc.signup_limit"] = signup_limit

    @app.context_processor
    def subscribe_helpers() -> dict[str, Any]:
        return {"csrf_token": csrf_token, "section_choices": section_choices, "honeypot_field": HONEYPOT_FIELD}


# ------------------------------------------------------------------------------------------------ helpers


def section_choices(chosen: list[str] | None = None) -> list[dict[str, Any]]:
    """The publication's sections for checkboxes: slug, label in the page language, checked."""
    publication = get_settings().publication
    selected = set(publication.slugs if chosen is None else chosen)
    lang = page_language()
    return [
        {"slug": s.slug, "label": publication.section_label(s.slug, lang), "checked": s.slug in selected}
        for s in publication.sections
    ]


def _client_address() -> str:
    return client_address(get_settings().trusted_proxies)


def _counted(queued: str | None, email: str = "", sections: list[str] | None = None) -> bool:
    """Count this request against the client's sign-up limit and, within it, queue the request `queued`
    (None: a refused form or a bot, only counted); False once over the limit.

    Two single statements on one connection (`Database.standalone`). On PostgreSQL each commits by itself:
    the count first, without waiting for its flush, so a client's counter row (one per client, or per proxy
    in front of many) is locked only inside the server, never while this thread waits for the GIL or the
    queued request's durable commit.
    """
    limit: ratelimit.Limit = current_app.extensions["feedsvc.signup_limit"]
    key = ratelimit.client_key("signup", _client_address(), get_settings().secret_key)
    with get_db().standalone() as connection:
        if not ratelimit.hit(connection, key, limit, time.time()):
            return False
        if queued:
            requests.queue(
                connection, get_settings(), queued, email, sections or [], lang=page_language(), source="form"
            )
    if queued and current_app.testing:  # else `feedsvc worker` decides it after the answer (timing says nothing)
        requests.process(get_db(), get_settings())
    return True


def _too_many() -> Response:
    limit: ratelimit.Limit = current_app.extensions["feedsvc.signup_limit"]
    wait = limit.window - int(time.time()) % limit.window
    response = _page("web/rate_limited.html", 429, minutes=max(1, -(-wait // 60)))
    response.headers["Retry-After"] = str(wait)
    return response


def _page(template: str, status: int = 200, **context: Any) -> Response:
    response = current_app.make_response((render_template(template, **context), status))
    return response


def _token_error(error: TokenError) -> Response:
    return _page("web/token_error.html", 400 if error.reason != "stale" else 409, reason=error.reason)


def _chosen_sections() -> list[str]:
    return request.form.getlist("sections")


@bp.after_request
def _secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


# ------------------------------------------------------------------------------------------------ sign up


@bp.get("/subscribe")
def subscribe_form() -> Response:
    """The sign-up form: address and sections (all checked)."""
    return _page("web/subscribe.html")


@bp.post("/subscribe")
def subscribe() -> Response:
    """Ask for a subscription; the same 'check your inbox' answer whatever the address's state.

    The form is checked first (without the database); then the request is counted against the client's
    limit (invalid requests count too), and a valid one is queued right after the count (`_counted`). Pages
    are rendered after both have committed.
    """
    email, chosen = request.form.get("email", ""), _chosen_sections()
    error = _address_error(email)
    if not error and not set(chosen) & set(get_settings().publication.slugs):
        error = t("请至少选择一个栏目。")
    queued = requests.SUBSCRIBE if not error and not request.form.get(HONEYPOT_FIELD) else None  # a bot: counted
    if not _counted(queued, email, chosen):
        return _too_many()
    if error:
        return _page("web/subscribe.html", 400, error=error, email=email[:320], chosen=chosen)
    return _page("web/subscribe_sent.html")


def _address_error(email: str) -> str:
    """What is wrong with the posted form or its address, in the page language; empty when nothing."""
    error = _form_error()
    if not error:
        try:
            normalise_email(email)
        except UnsendableAddress:
            error = t("本刊暂时无法投递 @ 前面含有非英文字符的地址，请换一个只用英文字母、数字和符号的地址。")
        except InvalidAddress:
            error = t("这不是一个有效的电子邮件地址。")
    return error


def _form_error() -> str:
    return "" if csrf_ok() else t("表单已过期，请再提交一次（需要允许本站的 Cookie）。")


# ------------------------------------------------------------------------------------------------ confirm


@bp.get("/confirm/<token>")
def confirm_page(token: str) -> Response:
    """Show what confirming does, with a button; changes nothing."""
    try:
        with get_db().session(readonly=True) as s:
            asked = subscriptions.confirmation(s, get_settings(), token)
            labels = _labels(asked.sections)
            return _page("web/confirm.html", subscriber=asked.subscriber, sections=labels, done=False)
    except TokenError as error:
        return _token_error(error)


@bp.post("/confirm/<token>")
def confirm(token: str) -> Response:
    """Activate the subscription."""
    if not csrf_ok():
        return _page("web/csrf_error.html", 400, back=request.path)
    try:
        with get_db().session() as s:
            already = tokens.resolve(s, get_settings(), tokens.CONFIRM, token).status == ACTIVE
            subscriber = subscriptions.confirm(s, get_settings(), token)
            manage = _manage_url(subscriber)
            return _page(
                "web/confirm.html",
                subscriber=subscriber,
                sections=_labels(subscriber.section_slugs),
                done=True,
                already=already,
                manage_url=manage,
            )
    except TokenError as error:
        return _token_error(error)


# ------------------------------------------------------------------------------------------------ manage


@bp.get("/manage")
def manage_request_form() -> Response:
    """Ask for a manage link by address."""
    return _page("web/manage_request.html")


@bp.post("/manage")
def manage_request() -> Response:
    """Mail a manage link to a known address; the same answer for any address."""
    email = request.form.get("email", "")
    error = _address_error(email)
    queued = requests.MANAGE_LINK if not error and not request.form.get(HONEYPOT_FIELD) else None
    if not _counted(queued, email):
        return _too_many()
    if error:
        return _page("web/manage_request.html", 400, email=email[:320], error=error)
    return _page("web/subscribe_sent.html", manage=True)


@bp.get("/manage/<token>")
def manage(token: str) -> Response:
    """The subscriber's own page: status, sections, and every action."""
    try:
        with get_db().session(readonly=True) as s:
            subscriber = tokens.resolve(s, get_settings(), tokens.MANAGE, token)
            return _page(
                "web/manage.html",
                subscriber=subscriber,
                choices=section_choices(subscriber.section_slugs),
                done=request.args.get("done", ""),
                error=request.args.get("error", ""),
            )
    except TokenError as error:
        return _token_error(error)


MANAGE_ACTIONS: dict[str, Callable[[Session, Subscriber, str], Response]] = {}


def _action(name: str) -> Callable[[Callable[[Session, Subscriber, str], Response]], Any]:
    def register(handler: Callable[[Session, Subscriber, str], Response]) -> Any:
        MANAGE_ACTIONS[name] = handler
        return handler

    return register


@bp.post("/manage/<token>")
def manage_action(token: str) -> Response:
    """Change sections, unsubscribe, subscribe again, download data, reset links, or erase."""
    if not csrf_ok():
        return _page("web/csrf_error.html", 400, back=request.path)
    handler = MANAGE_ACTIONS.get(request.form.get("action", ""))
    if handler is None:
        return _page("web/csrf_error.html", 400, back=request.path)
    try:
        with get_db().session() as s:
            subscriber = tokens.resolve(s, get_settings(), tokens.MANAGE, token, lock=True)
            return handler(s, subscriber, token)
    except TokenError as error:
        return _token_error(error)


def _back(token: str, **args: str) -> Response:
    return redirect(url_for("subscribe.manage", token=token, **args), code=303)


@_action("sections")
def _sections(s: Session, subscriber: Subscriber, token: str) -> Response:
    try:
        subscriptions.change_sections(s, subscriber, _chosen_sections(), get_settings().publication)
    except NoSections:
        return _back(token, error="no-sections")
    return _back(token, done="sections")


@_action("unsubscribe")
def _unsubscribe(s: Session, subscriber: Subscriber, token: str) -> Response:
    subscriptions.unsubscribe(s, subscriber, how="manage page")
    return _back(token, done="unsubscribed")


@_action("resubscribe")
def _resubscribe(s: Session, subscriber: Subscriber, token: str) -> Response:
    if subscriber.status != ACTIVE:
        subscriptions.resubscribe(s, get_settings(), subscriber)
    return _back(token, done="resubscribe")


@_action("export")
def _export(s: Session, subscriber: Subscriber, token: str) -> Response:
    body = privacy.export_json(s, subscriber)
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="my-subscription.json"'
    return response


@_action("reset")
def _reset(s: Session, subscriber: Subscriber, token: str) -> Response:
    subscriptions.reset_links(s, subscriber)
    return _back(_token_for(subscriber, tokens.MANAGE), done="reset")


@_action("erase")
def _erase(s: Session, subscriber: Subscriber, token: str) -> Response:
    if request.form.get("confirm") != "yes":
        return _back(token, error="erase-unconfirmed")
    privacy.erase(s, subscriber)
    return _page("web/erased.html")


# ------------------------------------------------------------------------------------------------ unsubscribe


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> Response:
    """Ask before unsubscribing; changes nothing."""
    try:
        with get_db().session(readonly=True) as s:
            subscriber = tokens.resolve(s, get_settings(), tokens.UNSUBSCRIBE, token)
            return _page("web/unsubscribe.html", subscriber=subscriber, done=False)
    except TokenError as error:
        return _token_error(error)


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> Response:
    """Unsubscribe: from the page's form (CSRF) or an RFC 8058 one-click POST (no cookie, no token); 200."""
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    if not one_click and not csrf_ok():
        return _page("web/csrf_error.html", 400, back=request.path)
    try:
        with get_db().session() as s:
            subscriber = tokens.resolve(s, get_settings(), tokens.UNSUBSCRIBE, token, lock=True)
            subscriptions.unsubscribe(s, subscriber, how="one-click" if one_click else "unsubscribe page")
            manage = _manage_url(subscriber)
            return _page("web/unsubscribe.html", subscriber=subscriber, done=True, manage_url=manage)
    except TokenError as error:
        return _token_error(error)


# ------------------------------------------------------------------------------------------------ small helpers


def _token_for(subscriber: Subscriber, purpose: str) -> str:
    return tokens.make_token(get_settings(), purpose, subscriber.id, subscriber.token_version)


def _manage_url(subscriber: Subscriber) -> str:
    return url_for("subscribe.manage", token=_token_for(subscriber, tokens.MANAGE))


def _labels(sections: list[str]) -> list[str]:
    return [c["label"] for c in section_choices(sections) if c["checked"]]
