"""Request bodies: a small limit for every route, the large one only where a view accepts uploads, and
the large ones read and parsed off gevent's event loop. The API's report import and the console's report
form both take uploads this way; the app factory installs the hook once (`init_app`).

Every route takes at most MAX_REQUEST_BYTES (the app's MAX_CONTENT_LENGTH), so a login or a site can never
make a worker read, hold or parse hundreds of megabytes. A view marked `@accepts_upload("MAX_UPLOAD_BYTES")`
takes that much instead. Under gunicorn's gevent workers one event loop serves every request of a process,
and parsing is CPU work that never yields: an upload's body is first copied to a spooled temporary file
(yielding between chunks), then its multipart form is parsed in a real OS thread of gevent's threadpool,
and the import parses the report there too (`offload`), so /health and the other requests of the worker
keep being answered while a big report is read.
"""

import tempfile

from flask import current_app, request

CHUNK = 256 * 1024
SPOOL_IN_MEMORY = 1024 * 1024  # bigger bodies go to a temporary file


def accepts_upload(limit_setting: str):
    """Let the marked view (function or MethodView method) take a body of up to
    app.config[limit_setting] bytes."""

    def mark(view):
        view._cloudeye_body_limit = limit_setting
        return view

    return mark


def _upload_limit() -> str | None:
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        view = getattr(view_class, request.method.lower(), None)
    return getattr(view, "_cloudeye_body_limit", None)


def _gevent_loop() -> bool:
    """Whether this process serves requests on gevent's event loop (gunicorn's gevent worker)."""
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("socket")


def offload(function, *args):
    """function(*args) in a real OS thread when this process runs on gevent's loop, so that CPU-heavy work
    does not stop the loop; a plain call otherwise (tests, threaded servers, the sync worker)."""
    if not _gevent_loop():
        return function(*args)
    import gevent

    return gevent.get_hub().threadpool.apply(function, args)


def _read_upload_off_the_loop() -> None:
    import gevent

    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - the request owns it
    stream = request.stream  # enforces Content-Length and max_content_length (413)
    while chunk := stream.read(CHUNK):
        spooled.write(chunk)
        gevent.sleep(0)  # a body already buffered by nginx arrives without ever blocking: let others run
    spooled.seek(0)
    request.__dict__["stream"] = spooled  # what the form parser reads (werkzeug caches `stream` there)
    request._cloudeye_spooled = spooled
    offload(request._load_form_data)


def init_app(app):
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_REQUEST_BYTES"]

    @app.before_request
    def _body_limit():
        setting = _upload_limit()
        if setting is None:
            return
        request.max_content_length = current_app.config[setting]
        if _gevent_loop() and request.mimetype == "multipart/form-data":
            _read_upload_off_the_loop()

    @app.teardown_request
    def _close_spooled(_exc):
        spooled = getattr(request, "_cloudeye_spooled", None)
        if spooled is not None:
            spooled.close()
