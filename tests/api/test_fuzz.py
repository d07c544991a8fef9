"""Schema-driven fuzzing: schemathesis generates requests for every operation of the app's own OpenAPI
document (valid and invalid ones) and checks each answer: never a 5xx, a documented status code, the
documented content type, and a body that matches the documented schema.

It runs in-process (WSGI) on the real MariaDB and Redis, as an admin and as an operator. Every operation
starts from the same freshly seeded world (users, shared and unshared sites, checks, incidents, tamper
events, findings, API tokens, channels, a notification, maintenance windows, status pages), and generated
ids and slugs are often swapped for those of that world, so requests reach existing rows and not only 404s. Each example gets a fresh API token, so examples that log out, revoke
tokens or change the caller's password cannot disarm the examples after them.

Bounded and reproducible: a fixed number of examples per operation, derandomized, no deadline. `make test`
runs EXAMPLES_PER_OPERATION (30) of each mode per operation, and checks that every operation was reached;
`make fuzz` runs CLOUDEYE_FUZZ_EXAMPLES of them and asks for at least CLOUDEYE_FUZZ_MIN_REQUESTS requests in
all. Each run prints how many requests it sent.
"""

import gzip
import ipaddress
import os
import socket
import traceback
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.parameters import ParameterLocation
from werkzeug.datastructures import Headers
from werkzeug.test import run_wsgi_app

from services import usability
from services.cache import cache
from services.config import API_PREFIX
from services.extensions import db
from services.models import (
    ApiToken,
    Channel,
    Finding,
    FindingImport,
    MaintenanceSite,
    MaintenanceWindow,
    Notification,
    StatusPage,
    StatusPageSite,
    TamperEvent,
    User,
)
from services.security import hash_token, new_token
from services.usability import CheckResult
from tests.factories import create_site, create_user, share, token_for

SPEC_PATH = API_PREFIX + "/openapi.json"
EXAMPLES_PER_OPERATION = int(os.environ.get("CLOUDEYE_FUZZ_EXAMPLES") or 30)
MIN_REQUESTS = int(os.environ.get("CLOUDEYE_FUZZ_MIN_REQUESTS") or 0)


class CountingApp:
    """The app as schemathesis calls it, counting the requests it answers (the checks send some too).

    Like an HTTP client, it undoes a gzip Content-Encoding before the checks read the body (the public
    status JSON is sent pre-compressed to clients that accept it, and schemathesis asks for gzip but reads
    a WSGI answer as it is)."""

    def __init__(self, app):
        self.app = app
        self.requests = 0

    def __call__(self, environ, start_response):
        self.requests += 1
        body, status, headers = run_wsgi_app(self.app, environ, buffered=True)
        headers = Headers(headers)
        if headers.get("Content-Encoding") == "gzip":
            body = [gzip.decompress(b"".join(body))]
            del headers["Content-Encoding"]
            headers["Content-Length"] = str(len(body[0]))
        start_response(status, headers.to_wsgi_list())
        return body


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
]


# Fixed primary keys: the generators can offer them before the first seed, and runs are reproducible.
IDS = {
    "user": [9001, 9002, 9003, 9004, 9005],  # admin, operator, other operator, viewer, probe (location far)
    "site": [9101, 9102, 9103],  # operator's own, other's shared for write, other's not shared
    "event": [9201, 9202, 9203],
    "finding": [9301, 9302, 9303],
    "import": [9401],
    "token": [9501, 9502],  # API tokens of the admin and the operator
    "channel": [9601, 9602, 9603],  # the operator's (a webhook, an Apprise URL), the other operator's
    "window": [9801, 9802, 9803],  # the operator's one-off and weekly windows, the other operator's
    "page": [9701, 9702],  # status pages: the operator's (its own site), the other operator's (a hidden site)
}
SLUGS = ["fuzz-status", "fuzz-other"]  # of those pages: public reads find them, new pages collide (409)
# Channels of the seeded world send (POST /channels/{id}/test) to a loopback port nobody listens on.
NOWHERE = "http://127.0.0.1:9/hook"
CALLERS = {"admin": 9001, "operator": 9002, "probe": 9005}
# The operator's site checked from the probe's location (and another): what the probe operations reach.
# Not among the known site ids: the other operations draw the same examples as before it existed.
LOCATED_SITE = 9104
GENERIC_REPORT = (  # text, as the schema types the upload (binary bytes would read as invalid data)
    '{"findings": [{"title": "Outdated jQuery", "severity": "medium", "rule_id": "jquery-old",'
    ' "location": "https://site.example.test/js/jquery.js"}]}'
)
KNOWN_VALUES = {
    "url": ["https://site.example.test/", "http://10.0.0.7:8080/health"],
    "accepted_status": ["200-399", "200, 301-302"],
    "tamper_ignore": [[], [r"\d{2}:\d{2}"]],
    "file": [GENERIC_REPORT],
    "site_ids": [[9101], [9101, 9102]],
    "timezone": ["UTC", "Asia/Shanghai"],
    "start_time": ["02:00", "23:30"],
    "weekdays": [["mon"], ["sat", "sun"]],
    "slug": SLUGS,
}


class World:
    """Seeds the rows every operation starts from, again each time a new operation starts."""

    def __init__(self, app):
        self.app = app
        self.operation = None

    def reset(self, operation_label: str) -> None:
        self.operation = operation_label
        with self.app.app_context():
            db.session.remove()
            with db.engine.begin() as connection:
                for table in reversed(db.metadata.sorted_tables):
                    connection.execute(table.delete())
            cache.store.flushdb()
            self._seed()

    def _seed(self) -> None:
        admin_id, operator_id, other_id, viewer_id, probe_id = IDS["user"]
        admin = create_user("admin", username="fuzz-admin", id=admin_id)
        operator = create_user("operator", username="fuzz-operator", id=operator_id)
        other = create_user("operator", username="fuzz-other", id=other_id)
        viewer = create_user("viewer", username="fuzz-viewer", id=viewer_id)
        create_user("probe", username="fuzz-probe", id=probe_id, location="far")
        own_id, shared_id, hidden_id = IDS["site"]
        own = create_site(operator, id=own_id, tamper_enabled=True)
        create_site(operator, id=LOCATED_SITE, name="checked from far", locations=["far", "near"])
        shared_write = create_site(other, id=shared_id, name="shared with operator")
        hidden = create_site(other, id=hidden_id, name="not shared")
        share(own, viewer, "read")
        share(shared_write, operator, "write")

        now = datetime.now(UTC).replace(microsecond=0)
        results = []
        for minutes in range(10, 0, -1):
            down = minutes in (5, 4)
            results.append(
                CheckResult(
                    site_id=own.id,
                    due_at=now - timedelta(minutes=minutes),
                    checked_at=now - timedelta(minutes=minutes),
                    up=not down,
                    http_status=503 if down else 200,
                    response_ms=None if down else 40.0 + minutes,
                    failure_kind="status" if down else None,
                    reason="status 503" if down else None,
                )
            )
        usability.record_results(results)  # checks, rollups and a closed incident
        for event_id, site, status in zip(
            IDS["event"], (own, own, hidden), ("open", "resolved", "open"), strict=True
        ):
            db.session.add(
                TamperEvent(id=event_id, site_id=site.id, status=status, change_ratio=0.4, diff="-a\n+b\n")
            )
        db.session.add(
            FindingImport(
                id=IDS["import"][0], site_id=own.id, user_id=operator.id, format="generic", scanner="generic"
            )
        )
        db.session.flush()
        for finding_id, site, severity, rank, status in zip(
            IDS["finding"],
            (own, shared_write, hidden),
            ("high", "low", "critical"),
            (3, 1, 4),
            ("open", "fixed", "open"),
            strict=True,
        ):
            db.session.add(
                Finding(
                    id=finding_id,
                    site_id=site.id,
                    scanner="nuclei",
                    dedup_key=f"{finding_id:064d}",
                    rule_id="xss-reflected",
                    title="Reflected XSS",
                    severity=severity,
                    severity_rank=rank,
                    status=status,
                    host="site.example.test",
                    path="/search",
                    param="q",
                    location="https://site.example.test/search?q=",
                    last_import_id=IDS["import"][0],
                )
            )
        channels = zip(
            IDS["channel"],
            (operator, operator, other),
            (NOWHERE, "mailto://127.0.0.1:9?from=a@example.test&to=b@example.test&mode=insecure", NOWHERE),
            strict=True,
        )
        for channel_id, owner, url in channels:
            db.session.add(
                Channel(
                    id=channel_id,
                    owner_id=owner.id,
                    name="seeded",
                    url=url,
                    kind="webhook" if url.startswith("http") else "apprise",
                    all_sites=True,
                )
            )
        db.session.flush()
        db.session.add(
            Notification(
                channel_id=IDS["channel"][0],
                site_id=own.id,
                event="site.down",
                delivery_id="00000000-0000-0000-0000-000000000001",
                occurred_at=now,
                payload={"site": {"id": own.id, "name": own.name, "url": own.url}, "details": {}},
                status="failed",
                attempts=8,
                last_error="HTTP 500",
            )
        )
        for window_id, owner, site, weekly in zip(
            IDS["window"], (operator, operator, other), (own, own, hidden), (False, True, False), strict=True
        ):
            window = MaintenanceWindow(id=window_id, owner_id=owner.id, title="seeded")
            if weekly:
                window.weekdays, window.start_time, window.duration_min = ["sun"], "02:00", 60
            else:
                window.starts_at, window.ends_at = now, now + timedelta(hours=1)
            window.sites = [MaintenanceSite(site_id=site.id)]
            db.session.add(window)
        for page_id, owner, site, slug in zip(
            IDS["page"], (operator, other), (own, hidden), SLUGS, strict=True
        ):
            page = StatusPage(id=page_id, owner_id=owner.id, slug=slug, title="seeded")
            page.entries = [StatusPageSite(site_id=site.id)]
            db.session.add(page)
        for token_id, user in zip(IDS["token"], (admin, operator), strict=True):
            db.session.add(
                ApiToken(
                    id=token_id,
                    user_id=user.id,
                    kind="api",
                    name="seeded",
                    token_hash=hash_token(new_token()),
                    prefix="seeded",
                )
            )
        db.session.commit()

    def token(self, role: str) -> str:
        """A fresh API token (not a login one: those die when the caller changes its password)."""
        with self.app.app_context():
            return token_for(db.session.get(User, CALLERS[role]), kind="api", expires_in=None)


def ids_for(name: str) -> list[int]:
    """Known ids for a parameter named site_id, user_id, event_id, token_id, bug_id, import_id..."""
    stem = name.removesuffix("_id")
    if stem in ("bug", "finding"):
        return IDS["finding"]
    return IDS.get(stem, [])


def _positive(case, location: ParameterLocation) -> bool:
    component = case.meta.components.get(location) if case.meta is not None else None
    return component is None or component.mode == GenerationMode.POSITIVE


def _use_known_values(case, data) -> None:
    """Swap some generated values, in components generated as valid data (a negative case must stay
    as invalid as schemathesis made it), for ids of the seeded world, and for values that pass the rules
    a JSON schema cannot say (a URL, status ranges, regexes, a scanner report): without them nearly
    every create would stop at 404 or 422 and never reach the code behind."""
    for location, values in (
        (ParameterLocation.PATH, case.path_parameters),
        (ParameterLocation.QUERY, case.query),
        (ParameterLocation.BODY, case.body),
    ):
        if not isinstance(values, dict) or not values or not _positive(case, location):
            continue
        for name in list(values):
            known = ids_for(name) if name.endswith("_id") else KNOWN_VALUES.get(name, [])
            if known and data.draw(st.booleans(), label=f"known {name}"):
                values[name] = data.draw(st.sampled_from(known), label=name)


def _auth_headers(case, world: World, role: str) -> dict:
    """A fresh token, unless this case deliberately sends a missing or broken Authorization header."""
    if not _positive(case, ParameterLocation.HEADER):
        return {}
    return {"Authorization": f"Bearer {world.token(role)}"}


@pytest.fixture(scope="module")
def counting_app(app):
    return CountingApp(app)


@pytest.fixture(scope="module")
def api_schema(counting_app):
    schema = schemathesis.openapi.from_wsgi(SPEC_PATH, counting_app)
    # Authorization stays valid; missing and wrong credentials are probed by the ignored_auth check.
    schema.config.generation.update(with_security_parameters=False)
    return schema


def _fuzz(operation, mode: GenerationMode, world: World, app: CountingApp) -> str | None:
    """Run the examples of one operation; the (shrunk) failure as text, or None."""

    # A probe account may call the probe operations only, and nobody else may (403 for them: covered by
    # test_probes); each operation is fuzzed as the callers that reach its code.
    probing = "/probe/" in operation.path
    roles = ["probe"] if probing else sorted(set(CALLERS) - {"probe"})

    @given(
        case=operation.as_strategy(generation_mode=mode),
        role=st.sampled_from(roles),
        data=st.data(),
    )
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def run(case, role, data):
        # Now and then schemathesis hands the positive run a case it labels negative (an empty upload
        # taken for invalid, then "accepted" by a valid import: a false positive of negative_data_rejection);
        # each run checks the cases of its own mode.
        assume(case.meta is None or case.meta.generation.mode == mode)
        _use_known_values(case, data)
        case.call_and_validate(app=app, headers=_auth_headers(case, world, role), checks=CHECKS)

    world.reset(operation.label)
    try:
        run()
    except Unsatisfiable:
        if mode == GenerationMode.NEGATIVE:
            return None  # nothing in this operation can be made invalid (e.g. no parameters at all)
        raise
    except BaseExceptionGroup as exc:  # schemathesis' FailureGroup: readable on its own
        return f"{operation.label} ({mode.value}): {exc}"
    except Exception:  # raised by the app itself (schemathesis re-raises what the view raised)
        return f"{operation.label} ({mode.value}):\n{traceback.format_exc()}"
    return None


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_operation_answers_within_its_contract(api_schema, world, counting_app, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20, "the OpenAPI document lost its operations"
    failures, unreached = [], []
    for operation in operations:
        before = counting_app.requests
        if failure := _fuzz(operation, mode, world, counting_app):
            failures.append(failure)
        elif counting_app.requests == before and mode == GenerationMode.POSITIVE:
            unreached.append(operation.label)
    assert not failures, "\n\n".join(failures)
    assert not unreached, f"operations the fuzzer never called: {unreached}"


def test_the_run_sent_enough_requests(counting_app):
    """After both modes (file order): the total, printed for the record and checked against make fuzz's
    minimum."""
    print(
        f"\nfuzz: {counting_app.requests} requests, {EXAMPLES_PER_OPERATION} examples per operation and mode"
    )
    assert counting_app.requests >= max(MIN_REQUESTS, 1)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Channels made by the fuzzer may name any host; POST /channels/{id}/test would send to it. Only
    loopback is reached (where the seeded channels point, and the database and Redis are)."""
    resolve, connect = socket.getaddrinfo, socket.socket.connect

    def local_resolve(host, *args, **kwargs):
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise socket.gaierror(socket.EAI_NONAME, "the fuzz test reaches loopback only")
        return resolve(host, *args, **kwargs)

    def local_connect(sock, address):
        if (
            sock.family in (socket.AF_INET, socket.AF_INET6)
            and not ipaddress.ip_address(address[0]).is_loopback
        ):
            raise ConnectionRefusedError("the fuzz test reaches loopback only")
        return connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", local_resolve)
    monkeypatch.setattr(socket.socket, "connect", local_connect)


@pytest.fixture(scope="module")
def world(app):
    return World(app)
