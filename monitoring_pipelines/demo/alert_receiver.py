"""The demo's stand-in for an on-call tool: a signed-webhook receiver on 127.0.0.1 that files what it gets.

The demo plan gets one webhook channel pointing here (URL and HMAC key through environment variables, as in
production); every notification the monitoring runs send is verified with ``notify.verify_signature`` and
appended as one JSON line to ``$MONITORING_HOME/demo-alerts.jsonl``. A request with a bad signature is refused
(401) and counted, so the demo shows the signature is checked, not assumed.
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from monitoring_pipelines.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

URL_ENV = "MONITORING_DEMO_WEBHOOK_URL"
KEY_ENV = "MONITORING_DEMO_WEBHOOK_KEY"
CHANNEL = {"name": "demo-oncall", "type": "webhook", "url_env": URL_ENV, "hmac_key_env": KEY_ENV}


class AlertReceiver:
    def __init__(self, path: Path):
        self.path, self.key = path, secrets.token_hex(16)
        self.received: list[dict] = []
        self.refused = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verify_signature(
                    body, self.headers.get(TIMESTAMP_HEADER, ""), self.headers.get(SIGNATURE_HEADER, ""), receiver.key
                )
                with receiver._lock:
                    if ok:
                        payload = json.loads(body)
                        receiver.received.append(payload)
                        with receiver.path.open("a", encoding="utf-8") as f:
                            f.write(json.dumps(payload, sort_keys=True) + "\n")
                    else:
                        receiver.refused += 1
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def __enter__(self) -> AlertReceiver:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
