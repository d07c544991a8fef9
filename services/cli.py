"""CLI commands, grouped per topic: `flask user create`, `flask user probe-token`, `flask user bootstrap-admin`,
`flask setup`, `flask search-index`."""

import time

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from services import users
from services.errors import DomainError
from services.extensions import db
from services.models import ROLES, User

user_cli = AppGroup("user", help="Manage users.")


@user_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--email", default=None)
@click.option("--location", default=None, help="role probe only: where its agent runs")
def create_user_command(username, password, role, email, location):
    """Create a user (the same username and password rules as the API)."""
    try:
        user = users.create_user(username, password, role=role, email=email, location=location)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"created user {user.username} (id {user.id}, role {user.role})")


@user_cli.command("probe-token")
@click.option("--username", required=True, help="a user of role probe")
@click.option("--name", default="agent", show_default=True, help="what the token is for")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), default=None, help="default: never")
def probe_token_command(username, name, expires_in_days):
    """Print a new API token for a probe account's agent (CLOUDEYE_API_TOKEN); only its hash is kept."""
    user = db.session.scalar(sa.select(User).where(User.username == username))
    if user is None or user.role != "probe":
        raise click.ClickException(f"no probe account named {username!r}")
    secret, _ = users.create_api_token(user, name, expires_in_days)
    click.echo(secret)


@user_cli.command("bootstrap-admin")
def bootstrap_admin_command():
    """Create the admin named by CLOUDEYE_ADMIN_USERNAME/PASSWORD if it does not exist yet."""
    config = current_app.config
    if not config.get("ADMIN_USERNAME") or not config.get("ADMIN_PASSWORD"):
        click.echo("CLOUDEYE_ADMIN_USERNAME/CLOUDEYE_ADMIN_PASSWORD not set: no admin bootstrapped")
        return
    try:
        user = users.bootstrap_admin(
            config["ADMIN_USERNAME"], config["ADMIN_PASSWORD"], config.get("ADMIN_EMAIL")
        )
    except DomainError as exc:  # e.g. a CLOUDEYE_ADMIN_PASSWORD the password rules refuse
        raise click.ClickException(f"the first admin cannot be created: {exc.message}") from exc
    if user is None:
        click.echo(f"admin {config['ADMIN_USERNAME']!r} already exists")
    else:
        click.echo(f"admin {user.username!r} created (id {user.id})")


@click.command("setup")
def setup_command():
    """Migrate the database to head, then bootstrap the admin: the `migrate` job."""
    from flask_migrate import upgrade

    upgrade()
    ctx = click.get_current_context()
    ctx.invoke(bootstrap_admin_command)
    click.echo("setup complete")


@click.command("search-index")
@click.option("--budget", type=float, default=3600.0, show_default=True, help="stop after this many seconds")
def search_index_command(budget):
    """Index the findings the search index has not reached yet (the sync worker does it every few
    seconds; this is for a first build of a big database)."""
    from services import search

    started = time.monotonic()
    done = search.index_pending(budget_s=budget)
    click.echo(f"{done} findings indexed in {time.monotonic() - started:.1f} s")


def init_app(app):
    app.cli.add_command(user_cli)
    app.cli.add_command(setup_command)
    app.cli.add_command(search_index_command)
