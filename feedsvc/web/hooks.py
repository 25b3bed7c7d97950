"""Web hooks: ``POST /hooks/ses``, Amazon SES bounce and complaint notifications delivered by SNS. A thin shell over
`feedsvc.bounces.sns` (the signature, the SES fields) and `feedsvc.bounces.intake.take_in_event` (the recording).

No CSRF (SNS has no session; the signature is the proof), JSON answers, a per-client rate limit
(FEEDSVC_HOOK_RATE_LIMIT, default 600 a minute). The hook exists only once FEEDSVC_SES_TOPIC_ARN names the topic
(404 before): any AWS account can sign SNS messages genuinely, so only the topic says they are ours. A message
that is not genuinely from SNS, or from another topic, changes nothing and gets a 4xx; a failure to record gets a
5xx, so that SNS delivers it again. Tests give their own certificate fetcher as
``create_app(..., FEEDSVC_SNS_FETCH=fetch)``; the URL rule is checked before any fetcher is called.
"""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from feedsvc import ratelimit
from feedsvc.bounces.intake import BounceEvent, take_in_event
from feedsvc.bounces.sns import SnsError, SnsVerifier, fetch_https, is_sns_url, read_message, ses_events
from feedsvc.config import Settings
from feedsvc.web.database import get_db, get_settings
from feedsvc.web.security import client_address

bp = Blueprint("hooks", __name__)
log = logging.getLogger(__name__)

VERIFIER = "feedsvc.sns_verifier"
LIMIT = "feedsvc.hook_limit"
DEFAULT_LIMIT = "600/60"
MAX_BODY = 256 * 1024  # SNS messages are at most 256 KB


def init_app(app: Flask, settings: Settings) -> None:
    """The SNS verifier (its certificate cache lives as long as the app) and the hook's rate limit."""
    app.extensions[VERIFIER] = SnsVerifier(app.config.get("FEEDSVC_SNS_FETCH") or fetch_https)
    app.extensions[LIMIT] = ratelimit.Limit.parse(settings.extra.get("FEEDSVC_HOOK_RATE_LIMIT", DEFAULT_LIMIT))


def _answer(status: int, **body: object) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


@bp.post("/hooks/ses")
def ses() -> Response:
    """One SNS message: a subscription to confirm, or an SES notification to take in."""
    settings = get_settings()
    topic = settings.extra.get("FEEDSVC_SES_TOPIC_ARN", "")
    if not topic:
        return _answer(404, error="no SES topic is configured (FEEDSVC_SES_TOPIC_ARN)")
    limit: ratelimit.Limit = current_app.extensions[LIMIT]
    key = ratelimit.client_key("hook-ses", client_address(settings.trusted_proxies), settings.secret_key)
    with get_db().session() as session:
        if not ratelimit.hit(session, key, limit, time.time()):
            return _answer(429, error="too many requests")
    if (request.content_length or 0) > MAX_BODY:
        return _answer(413, error="larger than an SNS message can be")
    body = request.get_data(cache=False)[: MAX_BODY + 1]
    if len(body) > MAX_BODY:
        return _answer(413, error="larger than an SNS message can be")
    try:
        message = read_message(body)
        if message.get("TopicArn") != topic:
            raise SnsError("the message is from another topic than FEEDSVC_SES_TOPIC_ARN", 403)
        verifier: SnsVerifier = current_app.extensions[VERIFIER]
        verifier.verify(message)
        kind = message["Type"]
        if kind == "SubscriptionConfirmation":
            return _confirm(verifier, message)
        if kind == "UnsubscribeConfirmation":
            log.warning("SNS: the subscription to %s was ended", message.get("TopicArn"))
            return _answer(200, ok=True)
        events = ses_events(_notification(message))
    except SnsError as exc:
        log.warning("SNS message refused (%d): %s", exc.status, exc)
        return _answer(exc.status, error=str(exc))
    outcomes = []
    for event in events:
        intake = take_in_event(
            get_db(),
            settings,
            BounceEvent(event.message_id, event.recipient, event.kind, event.status, event.diagnostic),
            source="ses",
            raw=body,
        )
        outcomes.append(intake.outcome)
    return _answer(200, ok=True, outcomes=outcomes)


def _confirm(verifier: SnsVerifier, message: dict) -> Response:
    url = str(message.get("SubscribeURL", ""))
    if not is_sns_url(url):
        raise SnsError("SubscribeURL is not https on sns.<region>.amazonaws.com", 403)
    try:
        verifier.fetch(url)
    except SnsError:
        raise
    except Exception as exc:
        log.warning("SNS: confirming the subscription to %s failed: %s", message.get("TopicArn"), exc)
        return _answer(502, error="the subscription could not be confirmed; SNS will ask again")
    log.info("SNS: subscribed to %s", message.get("TopicArn"))
    return _answer(200, ok=True, confirmed=True)


def _notification(message: dict) -> dict:
    try:
        notification = json.loads(str(message.get("Message", "")))
    except ValueError:
        raise SnsError("the notification's Message is not JSON") from None
    if not isinstance(notification, dict):
        raise SnsError("the notification's Message is not a JSON object")
    return notification
