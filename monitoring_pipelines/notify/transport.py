"""Sending: HTTP POST (Slack, webhook, PagerDuty) and SMTP, each failure sorted into *retry later* or *fix the
configuration*. Also the webhook signature and its verification, for receivers.

Every message this module produces is safe to log and store: URLs appear as scheme + host only, and the
texts of library exceptions that may quote a URL (``ValueError: unknown url type: ...``, ``InvalidURL``) are
replaced by our own words. ``delivery`` scrubs the secret values once more before anything is written.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate

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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib turns a redirected POST into a GET without body; a moved endpoint must be fixed in its env var
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: fall back to our own backoff
        return None


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float, where: str) -> int:
    """POST ``body``; return the 2xx status or raise a ``DeliveryError`` naming ``where`` and the HTTP status.

    ``where`` is e.g. ``model adult_income, channel team-slack (slack)``.
    """
    target = f"{where} at {mask_url(url)}"
    request = urllib.request.Request(url, data=body, method="POST", headers={"User-Agent": USER_AGENT, **headers})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        detail = _body_snippet(exc)
        if status == 429 or status >= 500:
            raise TransientDeliveryError(
                f"{target}: HTTP {status} {exc.reason}{detail}",
                retry_after=_retry_after(exc.headers.get("Retry-After")),
            ) from None
        hint = " (redirects are not followed: put the final URL in the environment variable)" if status < 400 else ""
        raise ChannelConfigError(f"{target}: HTTP {status} {exc.reason}{detail}{hint}") from None
    except http.client.InvalidURL:
        raise ChannelConfigError(
            f"{target}: the URL is malformed (the value is not shown: it may hold a secret)"
        ) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            raise ChannelConfigError(
                f"{target}: TLS certificate does not verify: {exc.reason.verify_message}"
            ) from None
        raise TransientDeliveryError(f"{target}: {_describe(exc.reason)}") from None
    except ssl.SSLCertVerificationError as exc:
        raise ChannelConfigError(f"{target}: TLS certificate does not verify: {exc.verify_message}") from None
    except (http.client.HTTPException, OSError) as exc:  # timeout while reading, reset, remote disconnected
        raise TransientDeliveryError(f"{target}: {_describe(exc)}") from None


def _body_snippet(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(300).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        exc.close()
    return f": {' '.join(text.split())}" if text else ""


def _describe(reason: object) -> str:
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host ({reason.strerror})"
    if isinstance(reason, OSError) and reason.strerror:
        return f"{type(reason).__name__}: {reason.strerror}"
    return f"{type(reason).__name__}: {reason}"


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
) -> dict[str, tuple[int, bytes]]:
    """Send over SMTP; return the recipients the server refused while accepting others (usually empty)."""
    target = f"{where} at smtp://{host}:{port}"
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
