import sqlalchemy as sa

from services.extensions import db
from services.models import User
from services.security import verify_password


def test_user_create(app, ctx):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["user", "create", "--username", "root2", "--password", "a good password", "--role", "admin"]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(sa.select(User).where(User.username == "root2"))
    assert user.role == "admin" and verify_password(user.password_hash, "a good password")
    again = runner.invoke(args=["user", "create", "--username", "root2", "--password", "a good password"])
    assert again.exit_code != 0 and "taken" in again.output
    short = runner.invoke(args=["user", "create", "--username", "bob", "--password", "short"])
    assert short.exit_code != 0 and "password" in short.output


def test_user_create_applies_the_username_rules_of_the_api(app, ctx):
    runner = app.test_cli_runner()
    for name in ("x", "has space", "semi;colon"):
        result = runner.invoke(args=["user", "create", "--username", name, "--password", "a good password"])
        assert result.exit_code != 0 and "username" in result.output, name
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_bootstrap_admin_from_environment_is_idempotent(app, ctx):
    runner = app.test_cli_runner()
    app.config.update(ADMIN_USERNAME="boss", ADMIN_PASSWORD="bootstrap password")
    try:
        first = runner.invoke(args=["user", "bootstrap-admin"])
        assert first.exit_code == 0 and "created" in first.output
        second = runner.invoke(args=["user", "bootstrap-admin"])
        assert second.exit_code == 0 and "already exists" in second.output
        setup = runner.invoke(args=["setup"])
        assert setup.exit_code == 0 and "setup complete" in setup.output
    finally:
        app.config.update(ADMIN_USERNAME=None, ADMIN_PASSWORD=None)
    admins = db.session.scalars(sa.select(User).where(User.username == "boss")).all()
    assert len(admins) == 1 and admins[0].role == "admin"


def test_bootstrap_without_variables_does_nothing(app, ctx):
    result = app.test_cli_runner().invoke(args=["user", "bootstrap-admin"])
    assert result.exit_code == 0 and "not set" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_bootstrap_refuses_a_weak_admin_password_with_a_message(app, ctx):
    app.config.update(ADMIN_USERNAME="boss", ADMIN_PASSWORD="password1")
    try:
        result = app.test_cli_runner().invoke(args=["user", "bootstrap-admin"])
    finally:
        app.config.update(ADMIN_USERNAME=None, ADMIN_PASSWORD=None)
    assert result.exit_code != 0 and "most common" in result.output and "Traceback" not in result.output
