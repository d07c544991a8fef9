"""The app's own security headers, on every answer (also without nginx: `make run`)."""

import pytest

from api.headers import API_CSP
from services.config import API_PREFIX
from tests.factories import PASSWORD, api, create_user

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": API_CSP,
}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/healthz", 200),
        (f"{API_PREFIX}/health", 200),
        (f"{API_PREFIX}/openapi.json", 200),
        (f"{API_PREFIX}/users/me", 401),
        (f"{API_PREFIX}/nowhere", 404),
        (f"{API_PREFIX}/sites?per_page=1000", 401),
    ],
)
def test_every_answer_carries_the_security_headers(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, name


def test_answers_with_tokens_are_not_stored_by_any_cache(client, viewer):
    user = create_user("operator")
    login = client.post(api("/users/login"), json={"username": user.username, "password": PASSWORD})
    assert login.status_code == 200 and login.headers["Cache-Control"] == "no-store"
    created = viewer.post("/users/me/tokens", json={"name": "ci"})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    assert viewer.get("/users/me").headers["Cache-Control"] == "no-store"
