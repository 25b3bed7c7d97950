"""/hooks/ses: SNS messages signed by a test certificate that the test serves over HTTPS on loopback.

The app is given a fetcher that takes https://sns.us-east-1.amazonaws.com/… to the test's server; the rule that
only sns.<region>.amazonaws.com may be fetched is checked by feedsvc on the URL as written, before the fetcher.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from builders import LOCAL_BASE_URL, make_app, make_settings
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from mta_support import SentRow, sent_rows, subscriber_state
from smtp_support import self_signed_certificate
from sqlalchemy import func, select

from feedsvc.bounces.models import Bounce
from feedsvc.bounces.sns import is_sns_url
from feedsvc.db.engine import Database

TOPIC = "arn:aws:sns:us-east-1:123456789012:feedsvc-ses"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
SUBSCRIBE_URL = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=tok"


class SnsStandIn:
    """The test's SNS: a signing key and certificate, and an HTTPS server on loopback that serves it."""

    def __init__(self, folder: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=2))
            .sign(self.key, hashes.SHA256())
        )
        self.requests: list[str] = []  # paths the server was asked for
        self.fetched: list[str] = []  # URLs feedsvc handed to the fetcher
        cert, key = self_signed_certificate(folder)
        pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.requests.append(self.path)
                body = pem if self.path.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.client_context = ssl.create_default_context(cafile=str(cert))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fetch(self, url: str) -> bytes:
        """The fetcher given to the app: the amazonaws.com URL goes to this server, path and query kept."""
        self.fetched.append(url)
        parts = urlsplit(url)
        local = f"https://127.0.0.1:{self.server.server_address[1]}{parts.path}" + (
            f"?{parts.query}" if parts.query else ""
        )
        with urllib.request.urlopen(local, context=self.client_context, timeout=10) as response:
            return response.read()

    def sign(self, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
        """`message` with SignatureVersion, SigningCertURL (unless given) and Signature, as SNS signs it."""
        message = {"SignatureVersion": version, "SigningCertURL": CERT_URL, **message}
        if message["Type"] == "Notification":
            fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        else:
            fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        text = "".join(f"{f}\n{message[f]}\n" for f in fields if f in message)
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS SignatureVersion 1 is SHA1
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), digest)
        return {**message, "Signature": base64.b64encode(signature).decode()}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sns(tmp_path: Path) -> Iterator[SnsStandIn]:
    stand_in = SnsStandIn(tmp_path)
    yield stand_in
    stand_in.close()


def notification(ses: dict[str, Any], *, topic: str = TOPIC, message_id: str = "n-1") -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic,
        "Message": json.dumps(ses),
        "Timestamp": "2026-12-01T12:00:00.000Z",
    }


def bounce(row: SentRow, bounce_type: str, status: str, words: str) -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": row.recipient, "action": "failed", "status": status, "diagnosticCode": words}
            ],
            "timestamp": "2026-12-01T12:00:00.000Z",
        },
        "mail": {
            "messageId": "0100018c-ses-own-id",
            "headers": [{"name": "From", "value": "n@example.org"}, {"name": "Message-ID", "value": row.message_id}],
        },
    }


def complaint(row: SentRow) -> dict[str, Any]:
    return {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": row.recipient}], "complaintFeedbackType": "abuse"},
        "mail": {"messageId": "0100018c-ses-own-id-2", "commonHeaders": {"messageId": row.message_id}},
    }


def _post(client: Any, message: dict[str, Any]) -> Any:
    # SNS posts its JSON as text/plain
    return client.post("/hooks/ses", data=json.dumps(message), headers={"Content-Type": "text/plain; charset=UTF-8"})


def _bounces(db: Database) -> int:
    with db.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(Bounce)) or 0


def test_ses_subscription_bounces_and_complaints(
    db: Database, database_url: str, tmp_path: Path, sns: SnsStandIn
) -> None:
    settings = make_settings(tmp_path, database_url, base_url=LOCAL_BASE_URL, env={"FEEDSVC_SES_TOPIC_ARN": TOPIC})
    rows = sent_rows(db, ["gone@example.com", "full@example.com", "angry@example.com", "blocked@example.com"])
    gone, full, angry, blocked = (rows[f"{n}@example.com"] for n in ("gone", "full", "angry", "blocked"))
    with make_app(settings, FEEDSVC_SNS_FETCH=sns.fetch) as app:
        client = app.test_client()
        confirmation = {
            "Type": "SubscriptionConfirmation",
            "MessageId": "c-1",
            "Token": "tok",
            "TopicArn": TOPIC,
            "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": SUBSCRIBE_URL,
            "Timestamp": "2026-12-01T12:00:00.000Z",
        }
        answer = _post(client, sns.sign(confirmation, "1"))
        assert (answer.status_code, answer.json["confirmed"]) == (200, True)
        assert "/?Action=ConfirmSubscription&TopicArn=x&Token=tok" in sns.requests

        for message, version in (
            (notification(bounce(gone, "Permanent", "5.1.1", "smtp; 550 5.1.1 user unknown")), "2"),
            (notification(bounce(full, "Transient", "4.2.2", "smtp; 452 4.2.2 mailbox full"), message_id="n-2"), "1"),
            (notification(complaint(angry), message_id="n-3"), "2"),
            (notification(bounce(blocked, "Permanent", "5.7.1", "smtp; 554 5.7.1 spam"), message_id="n-4"), "2"),
        ):
            answer = _post(client, sns.sign(message, version))
            assert (answer.status_code, answer.json["outcomes"]) == (200, ["recorded"])
    assert sns.fetched.count(CERT_URL) == 1  # the certificate was fetched once and kept
    assert subscriber_state(db, gone.subscriber_id) == {"status": "active", "score": 1.0}
    assert subscriber_state(db, full.subscriber_id) == {"status": "active", "score": 0.5}
    assert subscriber_state(db, angry.subscriber_id)["status"] == "unsubscribed"
    assert subscriber_state(db, blocked.subscriber_id) == {"status": "active", "score": 0.0}
    with db.session(readonly=True) as session:
        kinds = {(b.outbox_id, b.kind, b.source) for b in session.scalars(select(Bounce))}
    assert kinds == {
        (gone.outbox_id, "hard", "ses"),
        (full.outbox_id, "soft", "ses"),
        (angry.outbox_id, "complaint", "ses"),
        (blocked.outbox_id, "policy", "ses"),
    }


def test_forged_messages_change_nothing(db: Database, database_url: str, tmp_path: Path, sns: SnsStandIn) -> None:
    settings = make_settings(tmp_path, database_url, base_url=LOCAL_BASE_URL, env={"FEEDSVC_SES_TOPIC_ARN": TOPIC})
    gone = sent_rows(db, ["gone@example.com"])["gone@example.com"]
    genuine = notification(bounce(gone, "Permanent", "5.1.1", "smtp; 550 5.1.1 user unknown"))
    with make_app(settings, FEEDSVC_SNS_FETCH=sns.fetch) as app:
        client = app.test_client()
        tampered = {**sns.sign(genuine, "2"), "Message": genuine["Message"].replace("Permanent", "Transient")}
        assert _post(client, tampered).status_code == 403

        for url in (
            "https://evil.example.com/SimpleNotificationService-test.pem",
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
            "https://feedsvc-test.s3.amazonaws.com/SimpleNotificationService-test.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
        ):
            answer = _post(client, sns.sign({**genuine, "SigningCertURL": url}, "2"))
            assert answer.status_code == 403, url
        assert sns.fetched == [CERT_URL]  # only the genuine URL (for the tampered message) was ever fetched

        other_topic = sns.sign(notification(json.loads(genuine["Message"]), topic=TOPIC + "-other"), "2")
        assert _post(client, other_topic).status_code == 403
        evil_confirm = {
            "Type": "SubscriptionConfirmation",
            "MessageId": "c-2",
            "Token": "tok",
            "TopicArn": TOPIC,
            "Message": "subscribe",
            "SubscribeURL": "https://evil.example.com/confirm",
            "Timestamp": "2026-12-01T12:00:00.000Z",
        }
        assert _post(client, sns.sign(evil_confirm, "1")).status_code == 403
        assert client.post("/hooks/ses", data="not json").status_code == 400
        assert _post(client, {**sns.sign(genuine, "2"), "SignatureVersion": "3"}).status_code == 400
    assert not any("evil" in request for request in sns.requests)
    assert sns.fetched == [CERT_URL]
    assert _bounces(db) == 0
    assert subscriber_state(db, gone.subscriber_id) == {"status": "active", "score": 0.0}


def test_the_url_rule() -> None:
    assert is_sns_url("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem")
    assert not is_sns_url("https://sns.eu-west-1.amazonaws.com@evil.example.com/x.pem")
    assert not is_sns_url("https://SNS.eu-west-1.amazonaws.com.:443/x.pem")
    assert not is_sns_url("https://amazonaws.com/x.pem")
    assert not is_sns_url("ftp://sns.eu-west-1.amazonaws.com/x.pem")


def test_an_s3_bucket_named_sns_is_not_an_sns_host() -> None:
    """Virtual-hosted S3 serves anyone's bucket "sns" over HTTPS at these names: a certificate there signs nothing."""
    for host in ("sns.s3", "sns.s3-us-west-2", "sns.s3-website-us-east-1", "sns.execute-api", "sns.s3-accelerate"):
        assert not is_sns_url(f"https://{host}.amazonaws.com/SimpleNotificationService-abc.pem"), host
    for region in ("us-east-1", "ap-southeast-2", "us-gov-west-1", "il-central-1"):
        assert is_sns_url(f"https://sns.{region}.amazonaws.com/SimpleNotificationService-abc.pem"), region
    assert is_sns_url("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem")  # AWS China


def test_the_hook_is_rate_limited_per_client(database_url: str, tmp_path: Path) -> None:
    env = {"FEEDSVC_HOOK_RATE_LIMIT": "2/600", "FEEDSVC_SES_TOPIC_ARN": TOPIC}
    settings = make_settings(tmp_path, database_url, base_url=LOCAL_BASE_URL, env=env)
    with make_app(settings) as app:
        client = app.test_client()
        answers = [client.post("/hooks/ses", data="not json").status_code for _ in range(3)]
    assert answers == [400, 400, 429]


def test_an_ses_complaint_is_judged_by_its_feedback_type_like_an_arf_report() -> None:
    """not-spam is no complaint; virus and auth-failure are the sender's problem (policy), as in classify_feedback."""
    from feedsvc.bounces.sns import ses_events

    def complaint(feedback: str | None) -> dict[str, Any]:
        fields = {"complainedRecipients": [{"emailAddress": "reader@example.org"}]}
        if feedback is not None:
            fields["complaintFeedbackType"] = feedback
        return {"notificationType": "Complaint", "complaint": fields, "mail": {"messageId": "m1"}}

    assert ses_events(complaint("not-spam")) == []
    assert [e.kind for e in ses_events(complaint("virus"))] == ["policy"]
    assert [e.kind for e in ses_events(complaint("auth-failure"))] == ["policy"]
    assert [e.kind for e in ses_events(complaint("abuse"))] == ["complaint"]
    assert [e.kind for e in ses_events(complaint(None))] == ["complaint"]  # SES leaves it out when the ISP did


def test_without_a_configured_topic_the_hook_does_not_exist(
    db: Database, database_url: str, tmp_path: Path, sns: SnsStandIn
) -> None:
    """Any AWS account signs its own SNS messages genuinely: with no topic named, nothing is taken in or confirmed."""
    settings = make_settings(tmp_path, database_url, base_url=LOCAL_BASE_URL)
    gone = sent_rows(db, ["gone@example.com"])["gone@example.com"]
    genuine = sns.sign(notification(bounce(gone, "Permanent", "5.1.1", "smtp; 550 5.1.1 user unknown")), "2")
    with make_app(settings, FEEDSVC_SNS_FETCH=sns.fetch) as app:
        assert _post(app.test_client(), genuine).status_code == 404
    assert _bounces(db) == 0 and sns.fetched == []
