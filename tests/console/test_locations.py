"""The console and locations: which locations see a site down (site page and overview), and probe
accounts kept out."""

from tests.console.conftest import csrf_of
from tests.factories import PASSWORD, create_user


def test_the_console_refuses_probe_accounts(client):
    probe = create_user("probe", location="far")
    response = client.post(
        "/login",
        data={"username": probe.username, "password": PASSWORD, "csrf_token": csrf_of(client.get("/login"))},
    )
    assert response.status_code == 403
    assert "cannot use the console" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not logged in
