"""Queued imports run by real `sync_main.py` processes: 202 end to end, progress, kill -9, SIGTERM."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from services.extensions import db
from services.models import Finding, FindingImport
from tests.api.test_findings import counts, upload
from tests.factories import create_site
from tests.services.test_imports import nuclei_report
from tests.sync.test_process import Workers, wait_for

pytestmark = pytest.mark.slow
TOTAL = 50_000  # a few seconds of import on a fast machine: time to see it running and kill it


@pytest.fixture
def workers(app, ctx, test_env, tmp_path):
    """sync_main.py processes sharing the API's DATA_DIR (where queued reports wait)."""
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    group = Workers(test_env, Path(app.config["DATA_DIR"]), log_dir)
    yield group
    group.cleanup()


@pytest.fixture
def queue_above(app):
    saved = app.config["IMPORT_QUEUE_BYTES"]
    app.config["IMPORT_QUEUE_BYTES"] = 1024
    yield
    app.config["IMPORT_QUEUE_BYTES"] = saved


def _import(import_id) -> FindingImport:
    db.session.rollback()  # see what the workers committed
    return db.session.get(FindingImport, import_id, populate_existing=True)


def _findings(site_id) -> int:
    db.session.rollback()
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Finding).where(Finding.site_id == site_id)
    )


def test_a_queued_import_survives_a_killed_worker_with_nothing_half_written(
    app, workers, operator, queue_above
):
    site = create_site(operator.user)
    response = upload(operator, site.id, nuclei_report(TOTAL), filename="big.jsonl")
    assert response.status_code == 202
    import_id = response.get_json()["id"]

    first = workers.start()
    mysql = db.engine.dialect.name == "mysql"
    # On MySQL the progress shows while the import runs; on SQLite (one writer) only its state does.
    wait_for(
        lambda: (record := _import(import_id)).state == "running" and (record.rows_read >= 1000 or not mysql),
        120,
        "the import to be running",
    )
    if mysql:
        assert operator.get(f"/bugs/imports/{import_id}").get_json()["rows_read"] >= 1000
    first.kill()
    first.wait(30)
    # Killed mid-import: the import is still `running`, and not one of its findings is there.
    record = _import(import_id)
    assert (record.state, record.attempts) == ("running", 1)
    assert _findings(site.id) == 0

    second = workers.start()
    wait_for(lambda: _import(import_id).state == "done", 180, "the import to be run again")
    assert workers.stop(second) == 0
    body = operator.get(f"/bugs/imports/{import_id}").get_json()
    assert counts(body) == (TOTAL, 0, 0, 0) and body["rows_read"] == TOTAL and body["attempts"] == 2
    assert _findings(site.id) == TOTAL
    assert "its sync worker stopped during it; running it again" in workers.output(second)


def test_sigterm_puts_the_running_import_back_in_the_queue(app, workers, operator, queue_above):
    site = create_site(operator.user)
    import_id = upload(operator, site.id, nuclei_report(TOTAL)).get_json()["id"]
    proc = workers.start()
    wait_for(lambda: _import(import_id).state == "running", 120, "the import to be running")
    assert workers.stop(proc) == 0
    record = _import(import_id)
    if record.state == "queued":  # stopped at a batch: rolled back, that run not counted
        assert record.attempts == 0 and _findings(site.id) == 0
    else:  # it had finished within the grace period
        assert record.state == "done" and _findings(site.id) == TOTAL
