from datetime import timedelta

from services.extensions import db
from services.models import ApiToken
from services.security import hash_token
from tests.factories import PASSWORD, api, create_user, token_for


def login(client, username, password=PASSWORD, ip="10.0.0.1"):
    return client.post(
        api("/users/login"), json={"username": username, "password": password}, headers={"X-Real-IP": ip}
    )


def test_login_returns_a_bearer_token_that_works(client):
    user = create_user("operator")
    response = login(client, user.username)
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["token"].startswith("ce_")
    assert body["user"]["username"] == user.username and "password" not in body["user"]
    assert body["expires_at"]
    me = client.get(api("/users/me"), headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.get_json()["id"] == user.id


def test_only_the_hash_of_a_token_is_stored(client):
    user = create_user("viewer")
    token = login(client, user.username).get_json()["token"]
    stored = db.session.scalars(db.select(ApiToken.token_hash)).all()
    assert token not in stored and hash_token(token) in stored


def test_wrong_password_and_unknown_user_are_401(client):
    user = create_user("viewer")
    assert login(client, user.username, "wrong password").status_code == 401
    response = login(client, "nobody-here")
    assert response.status_code == 401
    assert response.get_json()["status"] == 401 and response.get_json()["message"]


def test_deactivated_user_cannot_log_in(client):
    user = create_user("viewer", is_active=False)
    assert login(client, user.username).status_code == 401


def test_login_is_rate_limited_per_client_and_username(client, app):
    user = create_user("viewer")
    limit = app.config["LOGIN_RATE_LIMIT"]
    codes = [
        login(client, user.username, "bad password", ip="10.9.9.9").status_code for _ in range(limit + 2)
    ]
    assert codes[:limit] == [401] * limit
    assert codes[limit:] == [429, 429]
    limited = login(client, user.username, ip="10.9.9.9")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # another client address is not affected
    assert login(client, user.username, ip="10.9.9.8").status_code == 200


def test_a_client_reaching_the_api_directly_cannot_dodge_the_limit_with_x_real_ip(client, app):
    """X-Real-IP counts only from a proxy on a loopback or private address (nginx); from a public
    address every attempt counts against that address, whatever the header says."""
    user = create_user("viewer")
    limit = app.config["LOGIN_RATE_LIMIT"]
    codes = [
        client.post(
            api("/users/login"),
            json={"username": user.username, "password": "bad password"},
            headers={"X-Real-IP": f"198.51.100.{attempt}"},
            environ_base={"REMOTE_ADDR": "203.0.113.7"},
        ).status_code
        for attempt in range(limit + 1)
    ]
    assert codes == [401] * limit + [429]
    # behind a proxy on a private address the header names the client, as nginx sends it
    assert login(client, user.username, ip="198.51.100.99").status_code == 200


def test_a_login_counter_that_lost_its_expiry_gets_one_again(client, app, redis_client):
    """A process stopped between INCR and EXPIRE must not lock a client and username out for good."""
    user = create_user("viewer")
    key = f"cloudeye:login:10.0.0.1:{user.username.lower()}"
    redis_client.set(key, app.config["LOGIN_RATE_LIMIT"] - 1)  # no TTL
    assert login(client, user.username).status_code == 200
    assert 0 < redis_client.ttl(key) <= app.config["LOGIN_RATE_WINDOW_S"]


def test_missing_bad_expired_and_revoked_tokens_are_401(client):
    user = create_user("viewer")
    assert client.get(api("/users/me")).status_code == 401
    assert client.get(api("/users/me"), headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get(api("/users/me"), headers={"Authorization": "Basic abc"}).status_code == 401
    expired = token_for(user, expires_in=timedelta(seconds=-1))
    response = client.get(api("/users/me"), headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and "expired" in response.get_json()["message"]


def test_logout_revokes_the_token_in_use(client):
    user = create_user("viewer")
    token = login(client, user.username).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post(api("/users/logout"), headers=headers).status_code == 204
    assert client.get(api("/users/me"), headers=headers).status_code == 401


def test_api_tokens_are_shown_once_listed_without_secret_and_revocable(viewer):
    created = viewer.post("/users/me/tokens", json={"name": "ci", "expires_in_days": 30})
    assert created.status_code == 201
    body = created.get_json()
    secret = body["token"]
    assert secret.startswith("ce_") and body["expires_at"]
    listed = viewer.get("/users/me/tokens").get_json()
    assert listed["total"] == 1 and "token" not in listed["items"][0]
    assert listed["items"][0]["prefix"] == secret[:10]
    headers = {"Authorization": f"Bearer {secret}"}
    assert viewer.client.get(api("/users/me"), headers=headers).status_code == 200
    assert viewer.get("/users/me/tokens").get_json()["items"][0]["last_used_at"]
    assert viewer.delete(f"/users/me/tokens/{body['id']}").status_code == 204
    assert viewer.client.get(api("/users/me"), headers=headers).status_code == 401
    assert viewer.delete(f"/users/me/tokens/{body['id']}").status_code == 404


def test_nobody_revokes_another_users_token(viewer, operator):
    token_id = viewer.post("/users/me/tokens", json={"name": "mine"}).get_json()["id"]
    assert operator.delete(f"/users/me/tokens/{token_id}").status_code == 404


def test_admin_manages_users(admin):
    created = admin.post(
        "/users",
        json={
            "username": "carol",
            "password": "long enough pw",
            "email": "c@example.test",
            "role": "operator",
        },
    )
    assert created.status_code == 201
    user_id = created.get_json()["id"]
    assert admin.get(f"/users/{user_id}").get_json()["role"] == "operator"
    assert admin.get("/users?role=operator").get_json()["total"] == 1
    patched = admin.patch(f"/users/{user_id}", json={"role": "viewer", "email": None})
    assert patched.status_code == 200 and patched.get_json()["role"] == "viewer"
    assert admin.post("/users", json={"username": "carol", "password": "long enough pw"}).status_code == 409
    assert admin.delete(f"/users/{user_id}").status_code == 204
    assert admin.get(f"/users/{user_id}").status_code == 404


def test_a_user_can_be_renamed_to_another_spelling_of_their_own_name(admin):
    """MySQL compares usernames case-insensitively: the user's own row is no clash."""
    user = create_user("viewer", username="dora")
    response = admin.patch(f"/users/{user.id}", json={"username": "Dora"})
    assert response.status_code == 200 and response.get_json()["username"] == "Dora"
    other = create_user("viewer", username="erik")
    assert admin.patch(f"/users/{other.id}", json={"username": "Dora"}).status_code == 409


def test_admin_cannot_lock_themselves_out(admin):
    assert admin.patch(f"/users/{admin.user.id}", json={"role": "viewer"}).status_code == 422
    assert admin.delete(f"/users/{admin.user.id}").status_code == 422


def test_changing_a_password_ends_login_sessions(admin, client):
    user = create_user("viewer")
    token = login(client, user.username).get_json()["token"]
    assert admin.patch(f"/users/{user.id}", json={"password": "a brand new one"}).status_code == 200
    assert client.get(api("/users/me"), headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert login(client, user.username, "a brand new one").status_code == 200


def test_user_management_needs_admin(operator, viewer):
    for caller in (operator, viewer):
        assert caller.get("/users").status_code == 403
        assert caller.post("/users", json={"username": "x" * 5, "password": "y" * 10}).status_code == 403
        assert caller.get(f"/users/{caller.user.id}").status_code == 403
        assert caller.patch(f"/users/{caller.user.id}", json={"role": "admin"}).status_code == 403
        assert caller.delete(f"/users/{caller.user.id}").status_code == 403


def test_user_input_is_validated(admin):
    bad = [
        {},
        {"username": "ab", "password": "long enough"},
        {"username": "good_name", "password": "short"},
        {"username": "good_name", "password": "long enough", "role": "root"},
        {"username": "good_name", "password": "long enough", "email": "not-an-email"},
        {"username": "good_name", "password": "long enough", "unexpected": 1},
        {"username": 12345, "password": "long enough"},
    ]
    for body in bad:
        response = admin.post("/users", json=body)
        assert response.status_code == 422, body
        assert response.get_json()["errors"], body
    malformed = admin.post("/users", data="{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert admin.patch(f"/users/{admin.user.id}", json=["a list"]).status_code == 422
