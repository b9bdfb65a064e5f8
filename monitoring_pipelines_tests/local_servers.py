"""Real servers on 127.0.0.1 that stand in for Slack, webhook receivers, PagerDuty and an SMTP relay.

``HttpReceiver`` is an ``http.server`` in a thread that records every request and answers from a script
(status, body, headers, or hang longer than the client's timeout). ``SmtpReceiver`` is aiosmtpd's real SMTP
server recording every message and login. ``closed_port()`` gives a port with nothing listening.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released): connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float

    def json(self):
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before answering (longer than the client's timeout: a timeout)


class HttpReceiver:
    """Records POSTs; answers with the scripted replies in order, then with ``default``."""

    def __init__(self):
        self.requests: list[Received] = []
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                    )
                    reply = receiver.script.popleft() if receiver.script else receiver.default
                if reply.hang:
                    time.sleep(reply.hang)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def log_message(self, *args):  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reply(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)


class _Handler:
    def __init__(self, owner: SmtpReceiver):
        self.owner = owner

    async def handle_DATA(self, server, session, envelope):
        if self.owner.data_reply:
            return self.owner.data_reply
        self.owner.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


class SmtpReceiver:
    """aiosmtpd's SMTP server on loopback, without TLS. With ``users`` it requires AUTH (allowed without TLS
    here, as on a loopback relay) and records each login; ``data_reply`` makes it refuse messages."""

    def __init__(self, users: dict[str, str] | None = None):
        self.mails: list[Mail] = []
        self.logins: list[tuple[str, str]] = []
        self.data_reply: str | None = None
        self.port = closed_port()
        kwargs = {}
        if users is not None:

            def authenticate(server, session, envelope, mechanism, auth_data):
                if not isinstance(auth_data, LoginPassword):
                    return AuthResult(success=False, handled=False)
                login, password = auth_data.login.decode(), auth_data.password.decode()
                self.logins.append((login, password))
                return AuthResult(success=users.get(login) == password, handled=False)

            kwargs = dict(authenticator=authenticate, auth_required=True, auth_require_tls=False)
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
