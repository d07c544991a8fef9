import contextlib
from datetime import timedelta

from services.extensions import db
from services.models import ApiToken
from services.security import hash_token
from tests import settings
from tests.factories import PASSWORD, api, create_user, token_for


def login(client, username, password=PASSWORD, ip="10.0.0.1", peer="127.0.0.1", **headers):
    """A login through a proxy at `peer` (loopback: trusted by default) for the client `ip`."""
    return client.post(
        api("/users/login"),
        json={"username": username, "password": password},
        headers={"X-Real-IP": ip, **headers} if ip else headers,
        environ_base={"REMOTE_ADDR": peer},
    )


@contextlib.contextmanager
def config(app, **values):
    saved = {name: app.config[name] for name in values}
    app.config.update(values)
    try:
        yield
    finally:
        app.config.update(saved)


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
    """X-Real-IP counts only from a trusted proxy (nginx); from any other address every attempt counts
    against that address, whatever the header says."""
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
    # behind the trusted proxy (loopback by default) the header names the client, as nginx sends it
    assert login(client, user.username, ip="198.51.100.99").status_code == 200


def test_a_private_address_is_no_proxy_unless_configured(client, app):
    """A host on the internal network is not nginx: its X-Real-IP and X-Forwarded-For are ignored until
    TRUSTED_PROXIES names it."""
    user = create_user("viewer")
    limit = app.config["LOGIN_RATE_LIMIT"]
    for attempt in range(limit):
        response = login(
            client, user.username, "bad password", ip=f"198.51.100.{attempt}", peer="10.1.2.3",
            **{"X-Forwarded-For": f"198.51.100.{attempt}"},
        )  # fmt: skip
        assert response.status_code == 401
    assert login(client, user.username, ip="198.51.100.77", peer="10.1.2.3").status_code == 429
    with config(
        app,
        TRUSTED_PROXIES=(*app.config["TRUSTED_PROXIES"], __import__("ipaddress").ip_network("10.0.0.0/8")),
    ):
        assert login(client, user.username, ip="198.51.100.77", peer="10.1.2.3").status_code == 200
        # without X-Real-IP: the right-most address of X-Forwarded-For that is not a trusted proxy
        chain = {"X-Forwarded-For": "203.0.113.50, 198.51.100.78, 10.9.9.9"}
        assert login(client, user.username, ip=None, peer="10.1.2.3", **chain).status_code == 200


def test_spellings_the_database_takes_for_one_account_share_its_budget(client, app):
    """On MySQL's collation "victim ", "vïctim" and "ＶＩＣＴＩＭ" find the account "victim": they are
    limited as that account, and only its own name (in any case or width) logs in."""
    user = create_user("viewer", username="victim")
    limit = app.config["LOGIN_RATE_LIMIT"]
    variants = ["victim ", "VICTIM", "ＶＩＣＴＩＭ"]
    if settings.BACKEND == "mysql":
        variants += ["vïctim", "victim\u00a0"]
    assert login(client, "vïctim", ip="10.0.0.9").status_code == 401  # a look-alike never logs in
    for attempt in range(limit):
        assert login(client, user.username, "bad password").status_code == 401, attempt
    for variant in variants:
        assert login(client, variant).status_code == 429, variant
    assert login(client, "victim", ip="10.0.0.2").status_code == 200  # another client: its own budget
    assert login(client, "ＶＩＣＴＩＭ ", ip="10.0.0.3").status_code == 200


def test_failed_logins_are_limited_per_client_across_usernames(client, app):
    user = create_user("viewer")
    with config(app, LOGIN_FAILURE_LIMIT=5):
        for number in range(5):
            assert login(client, f"nobody{number}", "bad password", ip="10.7.7.7").status_code == 401
        refused = login(client, user.username, ip="10.7.7.7")  # right password, but not from there
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert login(client, user.username, ip="10.7.7.8").status_code == 200


def test_usernames_are_stored_normalised_and_unique_in_every_spelling(admin, client):
    created = admin.post("/users", json={"username": " ＣａＲｏＬ ", "password": "long enough pw"})
    assert created.status_code == 201 and created.get_json()["username"] == "carol"
    for spelling in ("carol", "Carol", "CAROL ", "ｃａｒｏｌ"):
        response = admin.post("/users", json={"username": spelling, "password": "long enough pw"})
        assert response.status_code == 409 and "username" in response.get_json()["errors"], spelling
    assert login(client, "Carol", "long enough pw").status_code == 200
    for bad in ("ﬃ", "a b", "é" * 3, "x" * 65):
        assert admin.post("/users", json={"username": bad, "password": "long enough pw"}).status_code == 422


def test_a_login_counter_that_lost_its_expiry_gets_one_again(client, app, redis_client):
    """A process stopped between INCR and EXPIRE must not lock a client and username out for good."""
    user = create_user("viewer")
    key = f"cloudeye:login:10.0.0.1:user:{user.id}"
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
    assert response.status_code == 200 and response.get_json()["username"] == "dora"
    other = create_user("viewer", username="erik")
    assert admin.patch(f"/users/{other.id}", json={"username": "Dora"}).status_code == 409


def test_admin_cannot_lock_themselves_out(admin):
    assert admin.patch(f"/users/{admin.user.id}", json={"role": "viewer"}).status_code == 422
    assert admin.delete(f"/users/{admin.user.id}").status_code == 422


def works(client, token: str) -> bool:
    status = client.get(api("/users/me"), headers={"Authorization": f"Bearer {token}"}).status_code
    assert status in (200, 401)
    return status == 200


def test_a_new_password_ends_login_sessions_and_api_tokens(admin, client):
    user = create_user("viewer")
    session = login(client, user.username).get_json()["token"]
    api_token = token_for(user, kind="api", expires_in=None)
    response = admin.patch(f"/users/{user.id}", json={"password": "a brand new one"})
    assert response.status_code == 200 and response.get_json()["tokens_revoked"] == {"login": 1, "api": 1}
    assert not works(client, session) and not works(client, api_token)
    assert login(client, user.username, "a brand new one").status_code == 200
    assert admin.patch(f"/users/{user.id}", json={"email": None}).get_json()["tokens_revoked"] is None


def test_an_admin_may_keep_the_api_tokens_of_a_user_whose_password_changes(admin, client):
    user = create_user("viewer")
    session = login(client, user.username).get_json()["token"]
    api_token = token_for(user, kind="api", expires_in=None)
    change = {"password": "a brand new one", "revoke_api_tokens": False}
    assert admin.patch(f"/users/{user.id}", json=change).get_json()["tokens_revoked"] == {
        "login": 1,
        "api": 0,
    }
    assert not works(client, session) and works(client, api_token)


def test_users_change_their_own_password_with_the_current_one(client, viewer):
    other_session = login(client, viewer.user.username).get_json()["token"]
    api_token = token_for(viewer.user, kind="api", expires_in=None)
    wrong = viewer.post(
        "/users/me/password", json={"current_password": "guess", "new_password": "a fresh passphrase"}
    )
    assert wrong.status_code == 422 and "current_password" in wrong.get_json()["errors"]
    assert works(client, other_session)  # nothing changed
    changed = viewer.post(
        "/users/me/password", json={"current_password": PASSWORD, "new_password": "a fresh passphrase"}
    )
    assert changed.status_code == 200 and changed.get_json() == {"tokens_revoked": {"login": 1, "api": 1}}
    assert works(client, viewer.token)  # the session that changed it goes on
    assert not works(client, other_session) and not works(client, api_token)
    assert login(client, viewer.user.username).status_code == 401
    assert login(client, viewer.user.username, "a fresh passphrase").status_code == 200


def test_a_weak_new_password_is_refused_under_its_own_name(viewer):
    response = viewer.post(
        "/users/me/password", json={"current_password": PASSWORD, "new_password": "password1"}
    )
    assert response.status_code == 422
    assert "most common" in response.get_json()["errors"]["new_password"][0]


def test_wrong_current_passwords_count_as_failed_logins(app, client, viewer):
    with config(app, LOGIN_FAILURE_LIMIT=3):
        for _ in range(3):
            body = {"current_password": "guess", "new_password": "a fresh passphrase"}
            assert (
                viewer.post(
                    "/users/me/password", json=body, environ_base={"REMOTE_ADDR": "203.0.113.4"}
                ).status_code
                == 422
            )
        right = {"current_password": PASSWORD, "new_password": "a fresh passphrase"}
        limited = viewer.post("/users/me/password", json=right, environ_base={"REMOTE_ADDR": "203.0.113.4"})
        assert limited.status_code == 429


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
