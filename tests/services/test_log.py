import logging
import os
import socket
import subprocess
import sys
import time

import pytest

from services.log import get_logger, process_log_name, prune_old_logs, share_file_handlers
from tests.deploy.conftest import gunicorn_settings


@pytest.mark.parametrize("handler_type", ["TimedRotatingFileHandler", "RotatingFileHandler", "StreamHandler"])
def test_get_logger_writes_stdout_and_its_own_file_without_duplicates(tmp_path, capsys, handler_type):
    name = f"cloudeye.test.{handler_type}"
    logger = get_logger(name, "unit.log", str(tmp_path), "INFO", handler_type)
    logger = get_logger(name, "unit.log", str(tmp_path), "INFO", handler_type)  # twice: still one line each
    logger.propagate = False
    logger.info("hello %s", handler_type)
    for handler in logger.handlers:
        handler.flush()
    assert capsys.readouterr().out.count(f"hello {handler_type}") == 1
    assert (tmp_path / "unit.log").read_text().count(f"hello {handler_type}") == 1
    assert " [-] " in (tmp_path / "unit.log").read_text()  # request id placeholder outside requests


def test_unknown_handler_type_is_refused(tmp_path):
    with pytest.raises(ValueError, match="LOG_TYPE"):
        get_logger("cloudeye.test.bad", "x.log", str(tmp_path), "INFO", "SyslogHandler")


def test_each_process_gets_its_own_file_name():
    name = process_log_name("api")
    assert name.startswith("api.") and name.endswith(f".{os.getpid()}.log")


def test_request_lines_carry_the_request_id(client, app, monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", root.level)  # restored after the test
    root.setLevel(logging.INFO)  # the suite runs at WARNING
    response = client.get("/healthz", headers={"X-Request-ID": "trace-me-123"})
    assert response.headers["X-Request-ID"] == "trace-me-123"
    files = [
        h for h in root.handlers if getattr(h, "_cloudeye_handler", False) and hasattr(h, "baseFilename")
    ]
    assert files, "the process logs to a file in LOG_DIR"
    files[0].flush()
    with open(files[0].baseFilename) as handle:
        contents = handle.read()
    assert "[trace-me-123] GET /healthz -> 200" in contents
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert generated != "bad id with spaces" and len(generated) == 32


def test_old_files_of_ended_processes_are_pruned_and_others_kept(tmp_path):
    here = socket.gethostname()
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(ended.stdout)
    old = time.time() - 20 * 86400
    files = {
        f"api.{here}.{dead_pid}.log": old,  # this host, process ended, old: goes
        f"api.{here}.{dead_pid}.log.2026-11-01": old,  # its rotated file too
        "sync.gone-container.12.log": old,  # another host, old: goes
        f"api.{here}.{os.getpid()}.log": old,  # alive here: stays, however old
        "sync.gone-container.13.log": time.time(),  # recent: stays
        "nginx-access.log": old,  # not a per-process file: stays
        "dataapi.out.log": old,
    }
    for name, mtime in files.items():
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, (mtime, mtime))
    assert prune_old_logs(str(tmp_path), keep_days=14) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["sync.gone-container.13.log", f"api.{here}.{os.getpid()}.log", "nginx-access.log", "dataapi.out.log"]
    )
    assert prune_old_logs(str(tmp_path), keep_days=0) == 0


def test_gunicorn_error_lines_reach_the_workers_log_file(tmp_path, capsys):
    # gunicorn's error logger does not propagate: its tracebacks went to stderr only, lost with a container.
    app_logger = get_logger("cloudeye.test.app", "api.unit.log", str(tmp_path), "INFO", "StreamHandler")
    error_log = logging.getLogger("cloudeye.test.gunicorn.error")
    error_log.propagate = False

    class Worker:  # what post_worker_init reads of gunicorn's worker
        log = type("Log", (), {"error_log": error_log})()

    hook = gunicorn_settings()["post_worker_init"]
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(logging, "getLogger", lambda name=None: app_logger if name is None else error_log)
            hook(Worker())
            hook(Worker())  # a second call adds nothing
        assert share_file_handlers(app_logger, error_log) == 0
        error_log.error("Error handling request /api/cloudeye/v1/sites")
        for handler in error_log.handlers:
            handler.flush()
        assert (tmp_path / "api.unit.log").read_text().count("Error handling request") == 1
        assert "Error handling request" not in capsys.readouterr().out  # stdout stays gunicorn's own
    finally:
        for handler in list(error_log.handlers):
            error_log.removeHandler(handler)
