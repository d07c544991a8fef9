"""The password and username rules of services.users, for every caller (API, CLI, bootstrap)."""

import pytest

from services import users
from services.errors import Invalid


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("12345678", "most common"),
        ("password", "most common"),
        ("PassWord", "most common"),  # whatever the case
        ("iloveyou", "most common"),
        (" " * 8, "too few different"),
        ("aaaaaaaaaaaa", "too few different"),
        ("abababab", "too few different"),
        ("carol-is-the-best", "username"),
        ("I am CAROL here", "username"),
        ("short", "8 to 256"),
        ("x" * 257, "8 to 256"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password, reason):
    with pytest.raises(Invalid) as refused:
        users.check_password(password, "carol")
    assert reason in refused.value.errors["password"][0]


def test_a_good_password_passes():
    users.check_password("correct horse battery", "carol")
    users.check_password("Tr0ub4dor&3 stays", None)


def test_the_api_and_the_cli_refuse_common_passwords(app, ctx, admin):
    response = admin.post("/users", json={"username": "dave", "password": "12345678"})
    assert response.status_code == 422 and "common" in response.get_json()["errors"]["password"][0]
    response = admin.post("/users", json={"username": "dave", "password": "dave's password"})
    assert response.status_code == 422 and "username" in response.get_json()["errors"]["password"][0]
    result = app.test_cli_runner().invoke(
        args=["user", "create", "--username", "erin", "--password", "qwertyuiop"]
    )
    assert result.exit_code != 0 and "common" in result.output
