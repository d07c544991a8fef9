"""A request id on every request: taken from X-Request-ID (nginx sets it) or made up, echoed back."""

import logging
import re
import time
import uuid

from flask import g, request

log = logging.getLogger("cloudeye.request")
VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def init_app(app):
    @app.before_request
    def _assign_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if VALID_ID.match(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _log_and_echo(response):
        request_id = getattr(g, "request_id", None)
        if request_id:
            response.headers["X-Request-ID"] = request_id
            elapsed_ms = (time.perf_counter() - g.request_started) * 1000
            log.info("%s %s -> %s in %.1f ms", request.method, request.path, response.status_code, elapsed_ms)
        return response
