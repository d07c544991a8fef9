"""Reports above IMPORT_QUEUE_BYTES: 202, the report kept in DATA_DIR/imports, the sync worker's queue
(sync/imports.py, run here in-process), the import's states and who may see them."""

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.config import API_PREFIX
from services.extensions import db
from services.models import Finding, FindingImport
from sync.imports import ImportQueue
from tests.api.test_findings import counts, upload
from tests.factories import create_site
from tests.services.test_imports import nuclei_report

REPORT = nuclei_report(300)  # about 150 KB


@pytest.fixture
def queue_above(app):
    """Queue every report above 1 KB for the length of the test."""
    saved = app.config["IMPORT_QUEUE_BYTES"]
    app.config["IMPORT_QUEUE_BYTES"] = 1024
    yield 1024
    app.config["IMPORT_QUEUE_BYTES"] = saved


@pytest.fixture
def queue(app):
    return ImportQueue(app.config["DATA_DIR"], max_attempts=2)


@pytest.fixture
def site(operator):
    return create_site(operator.user)


def spooled(app) -> list[str]:
    root = Path(app.config["DATA_DIR"]) / "imports"
    return sorted(p.name for p in root.iterdir() if p.is_file()) if root.is_dir() else []


def finding_count(site_id) -> int:
    db.session.rollback()
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Finding).where(Finding.site_id == site_id)
    )


def test_a_big_report_is_queued_then_imported_by_the_worker(app, operator, site, queue, queue_above):
    response = upload(operator, site.id, REPORT, filename="big.jsonl")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["state"] == "queued" and body["format"] == "nuclei" and body["filename"] == "big.jsonl"
    assert counts(body) == (0, 0, 0, 0) and body["rows_read"] == 0 and body["error"] is None
    assert response.headers["Location"].endswith(f"{API_PREFIX}/bugs/imports/{body['id']}")
    assert len(spooled(app)) == 1 and finding_count(site.id) == 0
    assert operator.get(f"/bugs/imports/{body['id']}").get_json()["state"] == "queued"
    # The history lists it too, with its state.
    [listed] = operator.get(f"/bugs/imports?site_id={site.id}").get_json()["items"]
    assert (listed["id"], listed["state"]) == (body["id"], "queued")

    assert queue.run() == {"done": 1}

    done = operator.get(f"/bugs/imports/{body['id']}").get_json()
    assert done["state"] == "done" and counts(done) == (300, 0, 0, 0)
    assert done["rows_read"] == done["findings_in_report"] == 300 and done["attempts"] == 1
    assert done["file_sha256"] and done["finished_at"] and done["error"] is None
    assert finding_count(site.id) == 300
    assert spooled(app) == []  # the report's file is removed once imported
    # The findings name the import that wrote them.
    db.session.rollback()
    assert set(db.session.scalars(sa.select(Finding.last_import_id).where(Finding.site_id == site.id))) == {
        body["id"]
    }


def test_a_small_report_is_still_answered_at_once(operator, site, queue_above):
    response = upload(operator, site.id, nuclei_report(1))  # below 1 KB
    assert response.status_code == 201
    body = response.get_json()
    assert (body["state"], body["rows_read"], body["created"], body["attempts"]) == ("done", 1, 1, 0)
    assert "Location" not in response.headers


def test_queued_imports_are_only_visible_to_who_sees_the_site(
    operator, other_operator, viewer, site, queue, queue_above
):
    body = upload(operator, site.id, REPORT).get_json()
    for caller in (other_operator, viewer):
        assert caller.get(f"/bugs/imports/{body['id']}").status_code == 404
        assert caller.get("/bugs/imports").get_json()["items"] == []
    # Queuing needs write access, as an import does: 404 for a site one cannot see.
    assert upload(other_operator, site.id, REPORT).status_code == 404
    queue.run()
    assert other_operator.get(f"/bugs/imports/{body['id']}").status_code == 404


def test_a_report_malformed_further_on_fails_with_nothing_written(app, operator, site, queue, queue_above):
    broken = REPORT + b'{"template-id": "x", "info": {"severity": "high"}\n' + nuclei_report(10, start=1000)
    body = upload(operator, site.id, broken).get_json()
    assert body["state"] == "queued"
    assert queue.run() == {"failed": 1}
    failed = operator.get(f"/bugs/imports/{body['id']}").get_json()
    assert failed["state"] == "failed" and "line 301" in failed["error"], failed
    assert counts(failed) == (0, 0, 0, 0) and failed["finished_at"]
    assert finding_count(site.id) == 0 and spooled(app) == []


def test_what_cannot_be_told_at_once_is_refused_at_once(app, operator, site, queue_above):
    garbage = b"this is no report at all " * 100
    response = upload(operator, site.id, garbage)
    assert response.status_code == 422 and spooled(app) == []
    saved = app.config["MAX_REPORT_BYTES"]
    app.config["MAX_REPORT_BYTES"] = 2000
    try:
        assert upload(operator, site.id, REPORT).status_code == 413
    finally:
        app.config["MAX_REPORT_BYTES"] = saved
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == 0


def test_an_import_whose_worker_died_is_run_again_then_failed(app, operator, site, queue, queue_above):
    body = upload(operator, site.id, REPORT).get_json()
    # What a worker killed during the import leaves: the import running, its lock free, nothing written.
    db.session.execute(
        sa.update(FindingImport).where(FindingImport.id == body["id"]).values(state="running", attempts=1)
    )
    db.session.commit()
    assert queue.run() == {"done": 1}
    again = operator.get(f"/bugs/imports/{body['id']}").get_json()
    assert again["state"] == "done" and again["attempts"] == 2 and again["created"] == 300

    body = upload(operator, site.id, REPORT).get_json()
    db.session.execute(
        sa.update(FindingImport).where(FindingImport.id == body["id"]).values(state="running", attempts=2)
    )
    db.session.commit()
    assert queue.run() == {"failed": 1}
    failed = operator.get(f"/bugs/imports/{body['id']}").get_json()
    assert failed["state"] == "failed" and "stopped before it finished (2 times)" in failed["error"]
    assert spooled(app) == []


def test_a_stopping_worker_puts_the_import_back_in_the_queue(app, operator, site, queue, queue_above):
    import threading

    body = upload(operator, site.id, nuclei_report(2500)).get_json()
    stopping = threading.Event()
    stopping.set()
    record = db.session.get(FindingImport, body["id"])
    assert queue._run(record, stopping) == "requeued"  # stops at its first batch
    back = operator.get(f"/bugs/imports/{body['id']}").get_json()
    assert (back["state"], back["attempts"], back["created"]) == ("queued", 0, 0)
    assert finding_count(site.id) == 0 and len(spooled(app)) == 1
    assert queue.run() == {"done": 1}
    assert operator.get(f"/bugs/imports/{body['id']}").get_json()["created"] == 2500


def test_an_import_whose_site_was_deleted_goes_with_it(app, operator, site, queue, queue_above):
    body = upload(operator, site.id, REPORT).get_json()
    assert operator.delete(f"/sites/{site.id}").status_code == 204
    assert queue.run() == {}
    # Its report's file no queued import names any more: removed once old enough.
    [name] = spooled(app)
    old = (Path(app.config["DATA_DIR"]) / "imports" / name).stat().st_mtime - 7200
    os.utime(Path(app.config["DATA_DIR"]) / "imports" / name, (old, old))
    assert queue.sweep() == 1 and spooled(app) == []
    assert operator.get(f"/bugs/imports/{body['id']}").status_code == 404


def test_texts_are_stored_as_given_whatever_they_contain(operator, site, queue, queue_above):
    """The worker's rows go to MySQL as SQL text escaped by the driver (services/imports.py, _RowLiterals):
    quotes, backslashes, percent signs, NUL, non-BMP characters all come back as they went in."""
    import json

    tricky = "50% of 'quoted' \"double\" back\\slash %s %(x)s \\' \n\t 中文 😀 \x00end"
    report = json.dumps(
        {
            "findings": [
                {
                    "title": tricky + str(n),
                    "severity": "high",
                    "rule_id": "r%s",
                    "location": f"https://a.test/{n}%",
                }
                for n in range(50)
            ]
            + [{"title": "x" * 40, "severity": "low", "rule_id": "pad", "location": "https://a.test/pad"}]
            * 20
        }
    ).encode()
    body = upload(operator, site.id, report).get_json()
    assert body["state"] == "queued"
    assert queue.run() == {"done": 1}
    db.session.rollback()
    titles = set(
        db.session.scalars(
            sa.select(Finding.title).where(Finding.site_id == site.id, Finding.rule_id == "r%s")
        )
    )
    assert titles == {tricky.replace("\x00", "") + str(n) for n in range(50)}
    locations = set(db.session.scalars(sa.select(Finding.location).where(Finding.rule_id == "r%s")))
    assert "https://a.test/7%" in locations


def test_the_search_indexer_waits_while_the_worker_imports(
    app, operator, site, queue, queue_above, monkeypatch
):
    """The queue says when it imports (the sync worker's indexer pauses then), only then, and the
    indexer stops before its next batch when told to."""
    from services import imports, search

    seen = []
    real_import = imports.import_report

    def spying(*args, **kwargs):
        seen.append(queue.importing.is_set())
        return real_import(*args, **kwargs)

    monkeypatch.setattr("sync.imports.import_report", spying)
    assert upload(operator, site.id, REPORT, filename="big.jsonl").status_code == 202
    assert not queue.importing.is_set()
    assert queue.run() == {"done": 1}
    assert seen == [True] and not queue.importing.is_set()

    # 300 findings in batches of 100: paused after the first batch, then free to finish.
    calls = []
    assert search.index_pending(batch=100, pause=lambda: calls.append(1) or len(calls) > 1) == 100
    assert search.index_pending(batch=100, pause=lambda: False) == 200
