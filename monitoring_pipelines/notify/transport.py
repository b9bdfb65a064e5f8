"""Sending: HTTP POST (Slack, webhook, PagerDuty) through ``requests`` and SMTP, each failure sorted into *retry
later* or *fix the configuration*. Also the webhook signature and its verification, for receivers.

Retries inside one delivery call are urllib3's ``Retry`` (mounted on the ``requests`` session; the same policy
object paces the SMTP attempts): which failures retry, the exponential backoff, the server's ``Retry-After``.
Each failed attempt is reported through ``on_retry`` as it happens, so the outbox records every attempt; the
retries across calls (``next_attempt_at``) stay the outbox's.

Every message this module produces is safe to log and store: URLs appear as scheme + host only, and the
texts of library exceptions that may quote a URL (``InvalidURL``, urllib3's ``MaxRetryError``) are replaced by
our own words. ``delivery`` scrubs the secret values once more before anything is written.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import re
import smtplib
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from monitoring_pipelines.errors import MonitoringError

SIGNATURE_HEADER = "X-Monitoring-Signature"
TIMESTAMP_HEADER = "X-Monitoring-Timestamp"
USER_AGENT = "monitoring_pipelines-notify/1"


class DeliveryError(MonitoringError):
    """One delivery attempt failed. The message names no secret."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying: connection refused or reset, timeout, DNS, HTTP 5xx / 429, SMTP 4xx."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ChannelConfigError(DeliveryError):
    """Retrying will not help until a person fixes the channel: HTTP 4xx, a malformed URL, a missing
    environment variable, a refused SMTP login, a certificate that does not verify."""


OnRetry = Callable[[TransientDeliveryError], object]

# a request target in a log message: a path (with its query) after a space, quote or "=", with its scheme and host
_REQUEST_TARGET = re.compile(r"""(?<![^\s'"(=])(https?://[^/\s'"]+)?/[^\s'"]*""")


class _HideRequestTargets(logging.Filter):
    """urllib3 logs the path of each request (DEBUG) and of a retried broken connection (WARNING); the path and
    query are where webhook secrets live. The records stay, with scheme and host only."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _REQUEST_TARGET.sub(r"\1/<path hidden>", record.getMessage()), None
        return True


for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.poolmanager", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_HideRequestTargets())


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts of one send within one delivery call: ``attempts`` in all (the first included), the second
    ``backoff_seconds`` after the first failure and each later one twice as long after the previous, unless
    the receiver's ``Retry-After`` says otherwise. A wait longer than ``max_pause_seconds`` ends the attempts of
    this call instead: the outbox retries at its ``next_attempt_at`` on a later call. With ``max_span_seconds``
    no retry starts later than that after the first attempt (a signed webhook reuses its timestamp on every
    retry of the call, and receivers refuse an old one)."""

    attempts: int = 1
    backoff_seconds: float = 0.0
    max_pause_seconds: float = 0.0
    max_span_seconds: float | None = None


class _OutboxRetry(Retry):
    """urllib3's ``Retry`` with the plan's schedule, reporting each failed attempt that is retried."""

    # 413 Payload Too Large stays a configuration error even with a Retry-After header
    RETRY_AFTER_STATUS_CODES = frozenset({429, 503})

    target = ""
    max_pause = 0.0
    deadline: float | None = None  # time.monotonic() after which no retry starts
    on_retry: OnRetry | None = None

    @classmethod
    def create(cls, policy: RetryPolicy, target: str, on_retry: OnRetry | None) -> _OutboxRetry:
        retry = cls(
            total=policy.attempts - 1,
            status_forcelist=frozenset({429, *range(500, 600)}),
            # POST is not idempotent in general, but every notification is: the webhook carries its outbox id
            # (X-Monitoring-Delivery, delivery_id), PagerDuty deduplicates by dedup_key, and a Slack message
            # repeated after a lost reply is what the earlier urllib loop did as well
            allowed_methods=frozenset({"POST"}),
            backoff_factor=policy.backoff_seconds,
            respect_retry_after_header=True,
            raise_on_status=False,  # the last 429/5xx response comes back and is reported with its body
        )
        span = policy.max_span_seconds
        retry._attach(target, policy.max_pause_seconds, None if span is None else time.monotonic() + span, on_retry)
        return retry

    def _attach(self, target: str, max_pause: float, deadline: float | None, on_retry: OnRetry | None) -> None:
        self.target, self.max_pause, self.deadline, self.on_retry = target, max_pause, deadline, on_retry

    def new(self, **kw) -> _OutboxRetry:
        retry = super().new(**kw)
        retry._attach(self.target, self.max_pause, self.deadline, self.on_retry)
        return retry

    def get_backoff_time(self) -> float:
        # urllib3 sends the first retry at once; the plan's backoff_seconds is the first wait (then 2x, 4x ...).
        # Not capped here: a wait over max_pause ends the call's attempts (increment) rather than shrinking
        return self.backoff_factor * 2 ** (len(self.history) - 1) if self.history else 0.0

    def get_retry_after(self, response) -> float | None:
        try:
            return super().get_retry_after(response)
        except urllib3.exceptions.InvalidHeader:  # neither seconds nor an HTTP date: our own backoff applies
            return None

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if error is not None and isinstance(_connection_failure(self.target, error), ChannelConfigError):
            raise urllib3.exceptions.MaxRetryError(_pool, url, error) from error  # e.g. a certificate: no retry
        retry = super().increment(method, url, response, error, _pool, _stacktrace)  # MaxRetryError when spent
        pause = (retry.get_retry_after(response) if response is not None else None) or retry.get_backoff_time()
        late = self.deadline is not None and time.monotonic() + pause > self.deadline
        if pause > self.max_pause or late:  # longer than a monitoring run should block for: the next call retries
            raise urllib3.exceptions.MaxRetryError(_pool, url, error or urllib3.exceptions.ResponseError("wait"))
        if self.on_retry is not None:
            if response is not None:
                failure = _http_failure(
                    self.target,
                    response.status,
                    response.reason,
                    _first_bytes(response),
                    retry.get_retry_after(response),
                )
            elif isinstance(error, TransientDeliveryError):
                failure = error
            else:
                failure = _connection_failure(self.target, error)
            self.on_retry(failure)
        return retry


# -- HTTP ------------------------------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/secret`` -> ``https://hooks.slack.com``: enough to tell which
    endpoint failed, nothing of the path, query or user info, where webhook secrets live."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<malformed URL>"
    if not parts.scheme or not host:
        return "<malformed URL>"
    return f"{parts.scheme}://{host}{port}"


def check_http_url(url: str, where: str) -> None:
    """Raise ``ChannelConfigError`` unless ``url`` is an absolute http(s) URL with a host and a valid port."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is no number
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ChannelConfigError(
            f"{where} is not a valid http(s) URL (scheme, host and optional port; "
            f"the value is not shown because it may hold a secret)"
        )


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    where: str,
    *,
    retry: RetryPolicy | None = None,
    on_retry: OnRetry | None = None,
) -> int:
    """POST ``body``; return the 2xx status or raise a ``DeliveryError`` naming ``where`` and the HTTP status.

    ``where`` is e.g. ``model adult_income, channel team-slack (slack)``. With ``retry``, transient failures
    are retried in this call; ``on_retry`` receives each failed attempt that is retried, the last failure is
    raised. Redirects are not followed (a moved endpoint must be fixed in its environment variable).
    """
    target = f"{where} at {mask_url(url)}"
    retries = _OutboxRetry.create(retry or RetryPolicy(), target, on_retry)
    with requests.Session() as session:
        session.headers.clear()  # no requests defaults (gzip, keep-alive): receivers see what we send
        session.mount("http://", HTTPAdapter(max_retries=retries))
        session.mount("https://", HTTPAdapter(max_retries=retries))
        # errors are raised outside the except clauses: requests' exceptions quote the URL, and none may stay
        # attached to ours as __context__
        failure: DeliveryError | None = None
        try:
            with session.post(
                url,
                data=body,
                headers={"User-Agent": USER_AGENT, **headers},
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                if not 200 <= response.status_code < 300:
                    retry_after = retries.get_retry_after(response.raw)
                    failure = _http_failure(
                        target, response.status_code, response.reason, response.content, retry_after
                    )
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema):
            failure = ChannelConfigError(
                f"{target}: the URL is malformed (the value is not shown: it may hold a secret)"
            )
        except requests.exceptions.RequestException as exc:
            failure = _connection_failure(target, exc)
    if failure is not None:
        raise failure
    return response.status_code


def _http_failure(target: str, status: int, reason: str, body: bytes, retry_after: float | None) -> DeliveryError:
    """The error of one non-2xx response, quoting the first 300 bytes of its body."""
    text = " ".join(body[:300].decode("utf-8", "replace").split())
    text = f"{target}: HTTP {status} {reason}" + (f": {text}" if text else "")
    if status == 429 or status >= 500:
        return TransientDeliveryError(text, retry_after=retry_after)
    hint = " (redirects are not followed: put the final URL in the environment variable)" if status < 400 else ""
    return ChannelConfigError(text + hint)


def _first_bytes(response) -> bytes:
    """Of a urllib3 response about to be retried (urllib3 drains the rest)."""
    try:
        return response.read(300, decode_content=False)
    except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError):  # the status alone says enough
        return b""


def _connection_failure(target: str, exc: BaseException) -> DeliveryError:
    """The error of an attempt that got no HTTP response: refused, timeout, DNS, reset, TLS."""
    cert = next((c for c in _causes(exc) if isinstance(c, ssl.SSLCertVerificationError)), None)
    if cert is not None:
        return ChannelConfigError(f"{target}: TLS certificate does not verify: {cert.verify_message}")
    return TransientDeliveryError(f"{target}: {_describe(exc)}")


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors it wraps, outermost first: requests wraps urllib3's errors, which wrap the
    socket's (as ``__cause__``, ``reason`` or an argument)."""
    found: list[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if any(e is f for f in found):
            continue
        found.append(e)
        inner = (e.__cause__, getattr(e, "reason", None), getattr(e, "original_error", None), *e.args)
        todo += [c for c in inner if isinstance(c, BaseException)]
    return found


def _describe(exc: BaseException) -> str:
    causes = _causes(exc)

    def first(kind):
        return next((c for c in causes if isinstance(c, kind)), None)

    if first(ConnectionRefusedError):
        return "connection refused"
    if (unresolved := first(socket.gaierror)) is not None:
        return f"cannot resolve the host ({unresolved.strerror})"
    timeouts = (TimeoutError, urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError)
    if any(isinstance(c, timeouts) and not isinstance(c, urllib3.exceptions.NewConnectionError) for c in causes):
        return "timed out"
    with_text = [c for c in causes if isinstance(c, OSError) and c.strerror]
    if with_text:
        return f"{type(with_text[-1]).__name__}: {with_text[-1].strerror}"
    root = causes[-1]
    return f"{type(root).__name__}: {root}"


# -- webhook signature -----------------------------------------------------------------------------------------


def sign(body: bytes, timestamp: str, key: bytes | str) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(key, ``timestamp + "." + body``)."""
    key = key.encode() if isinstance(key, str) else key
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    body: bytes, timestamp: str, signature: str, key: bytes | str, tolerance: float = 300, *, now: float | None = None
) -> bool:
    """For receivers: True when ``signature`` (the ``X-Monitoring-Signature`` header) signs ``body`` (the raw
    request bytes) with ``key`` and ``timestamp`` (the ``X-Monitoring-Timestamp`` header, Unix seconds) lies
    within ``tolerance`` seconds of ``now`` (replayed old requests are refused). Constant-time comparison."""
    try:
        sent_at = float(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(body, timestamp, key), signature or "")


# -- SMTP ------------------------------------------------------------------------------------------------------


def build_email(payload: Mapping) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = payload["subject"]
    msg["From"] = payload["from"]
    msg["To"] = ", ".join(payload["to"])
    msg["Date"] = formatdate(usegmt=True)
    for name, value in payload.get("headers", {}).items():
        msg[name] = value
    msg.set_content(payload["text"])
    msg.add_alternative(payload["html"], subtype="html")
    return msg


def send_email(
    host: str,
    port: int,
    *,
    starttls: bool,
    username: str | None,
    password: str | None,
    message: EmailMessage,
    timeout: float,
    where: str,
    retry: RetryPolicy | None = None,
    on_retry: OnRetry | None = None,
) -> dict[str, tuple[int, bytes]]:
    """Send over SMTP; return the recipients the server refused while accepting others (usually empty).

    ``retry`` and ``on_retry`` as for ``post``: the same urllib3 ``Retry`` paces the attempts (a configuration
    error is never retried)."""
    target = f"{where} at smtp://{host}:{port}"
    retries = _OutboxRetry.create(retry or RetryPolicy(), target, on_retry)
    while True:
        try:
            return _send_email_once(host, port, starttls, username, password, message, timeout, target)
        except TransientDeliveryError as exc:
            failure = exc
        spent = False
        try:
            retries = retries.increment(error=failure)  # reports the failure to on_retry when it is retried
        except urllib3.exceptions.MaxRetryError:
            spent = True
        if spent:
            raise failure
        retries.sleep()


def _send_email_once(
    host: str,
    port: int,
    starttls: bool,
    username: str | None,
    password: str | None,
    message: EmailMessage,
    timeout: float,
    target: str,
) -> dict[str, tuple[int, bytes]]:
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            smtp.ehlo()
            if starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if username is not None:
                smtp.login(username, password or "")
            return smtp.send_message(message)
    except smtplib.SMTPNotSupportedError as exc:  # e.g. STARTTLS or AUTH asked of a server without it
        raise ChannelConfigError(f"{target}: {exc}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = {code for code, _ in exc.recipients.values()}
        text = "; ".join(f"{rcpt}: {code} {_smtp_text(msg)}" for rcpt, (code, msg) in exc.recipients.items())
        error = TransientDeliveryError if all(400 <= c < 500 for c in codes) else ChannelConfigError
        raise error(f"{target}: every recipient refused ({text})") from None
    except smtplib.SMTPResponseException as exc:  # login refused, sender refused, data refused, connect refused
        kind = "login refused" if isinstance(exc, smtplib.SMTPAuthenticationError) else "server replied"
        error = TransientDeliveryError if 400 <= exc.smtp_code < 500 else ChannelConfigError
        raise error(f"{target}: {kind} {exc.smtp_code} {_smtp_text(exc.smtp_error)}") from None
    except smtplib.SMTPServerDisconnected as exc:
        raise TransientDeliveryError(f"{target}: server disconnected ({exc})") from None
    except smtplib.SMTPException as exc:  # e.g. no authentication method in common
        raise ChannelConfigError(f"{target}: {exc}") from None
    except ssl.SSLError as exc:
        raise ChannelConfigError(
            f"{target}: TLS failed: {getattr(exc, 'verify_message', None) or exc.reason}"
        ) from None
    except OSError as exc:  # refused, timeout, DNS
        raise TransientDeliveryError(f"{target}: {_describe(exc)}") from None


def _smtp_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())
