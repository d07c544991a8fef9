"""Users (admins), and everyone's own password and API tokens."""

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from console.auth import current_user, login_required
from console.forms import PasswordForm, TokenForm, UserCreateForm, UserEditForm, apply_errors, load_form
from console.views import bp
from services import users
from services.clients import client_address
from services.errors import Conflict, Invalid, TooManyRequests
from services.extensions import db
from services.schemas import PasswordChangeSchema, TokenCreateSchema, UserCreateSchema, UserUpdateSchema


def _admin():
    user = current_user()
    users.require_role(user, "admin")  # 403 for anybody else
    return user


@bp.get("/users", endpoint="users")
@login_required
def users_list():
    _admin()
    return render_template("console/users.html", users=db.session.scalars(users.list_users()).all())


@bp.route("/users/new", methods=["GET", "POST"])
@login_required
def user_new():
    _admin()
    form = UserCreateForm()
    if request.method == "GET":
        return render_template("console/user_form.html", form=form, target=None)
    body = {
        "username": request.form.get("username", "").strip(),
        "password": request.form.get("password", ""),
        "email": request.form.get("email", "").strip() or None,
        "role": request.form.get("role", ""),
    }
    try:
        created = users.create_user(**load_form(UserCreateSchema(), body))
    except ValidationError as exc:
        apply_errors(form, exc.messages)
    except (Conflict, Invalid) as exc:
        apply_errors(form, exc.errors or {"_schema": [exc.message]})
    else:
        flash(_("User %(name)s created.", name=created.username), "success")
        return redirect(url_for("console.users"))
    return render_template("console/user_form.html", form=form, target=None), 422


@bp.route("/users/<id:user_id>/edit", methods=["GET", "POST"])
@login_required
def user_edit(user_id):
    actor = _admin()
    target = users.get_user(user_id)
    form = UserEditForm()
    if request.method == "GET":
        form.username.data, form.email.data = target.username, target.email
        form.role.data, form.is_active.data = target.role, target.is_active
        return render_template("console/user_form.html", form=form, target=target)
    body = {
        "username": request.form.get("username", "").strip(),
        "email": request.form.get("email", "").strip() or None,
        "role": request.form.get("role", ""),
        "is_active": "is_active" in request.form,
    }
    if request.form.get("password"):
        body["password"] = request.form["password"]
        body["revoke_api_tokens"] = "revoke_api_tokens" in request.form
    try:
        # The admin's own console session goes on when they change their own password.
        saved = users.update_user(actor, target, load_form(UserUpdateSchema(), body), keep=g.token)
    except ValidationError as exc:
        apply_errors(form, exc.messages)
    except (Conflict, Invalid) as exc:
        db.session.rollback()
        apply_errors(form, exc.errors or {"_schema": [exc.message]})
    else:
        revoked = saved.tokens_revoked
        if revoked:
            message = _(
                "User %(name)s saved: %(login)s login sessions ended, %(api)s API tokens revoked.",
                name=saved.username,
                login=revoked["login"],
                api=revoked["api"],
            )
        else:
            message = _("User %(name)s saved.", name=saved.username)
        flash(message, "success")
        return redirect(url_for("console.users"))
    return render_template("console/user_form.html", form=form, target=users.get_user(user_id)), 422


@bp.post("/users/<id:user_id>/delete")
@login_required
def user_delete(user_id):
    actor = _admin()
    try:
        users.delete_user(actor, users.get_user(user_id))
    except (Conflict, Invalid) as exc:
        flash(exc.message, "error")
    else:
        flash(_("User deleted."), "success")
    return redirect(url_for("console.users"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    """The caller's own password, as POST /users/me/password: the current one is required (a wrong one
    counts as a failed login of this client), every other session ends, and the API tokens too unless
    unticked; this session goes on."""
    form = PasswordForm()
    status, headers = 200, {}
    if request.method == "POST":
        body = {
            "current_password": request.form.get("current_password", ""),
            "new_password": request.form.get("new_password", ""),
            "revoke_api_tokens": "revoke_api_tokens" in request.form,
        }
        try:
            data = load_form(PasswordChangeSchema(), body)
            revoked = users.change_own_password(
                current_user(),
                data["current_password"],
                data["new_password"],
                g.token,
                client=client_address(),
                revoke_api_tokens=data["revoke_api_tokens"],
            )
        except ValidationError as exc:
            apply_errors(form, exc.messages)
            status = 422
        except Invalid as exc:
            db.session.rollback()
            apply_errors(form, exc.errors or {"_schema": [exc.message]})
            status = 422
        except TooManyRequests as exc:
            form.form_errors.append(_("Too many wrong passwords from this address, try again later."))
            status, headers = 429, {"Retry-After": str(exc.retry_after)}
        else:
            flash(
                _(
                    "Password changed: %(login)s other login sessions ended, %(api)s API tokens revoked.",
                    login=revoked["login"],
                    api=revoked["api"],
                ),
                "success",
            )
            return redirect(url_for("console.password"))
    return render_template("console/password.html", form=form), status, headers


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    user = current_user()
    form = TokenForm()
    created_secret, status = None, 200
    if request.method == "POST":
        body = {
            "name": request.form.get("name", "").strip(),
            "expires_in_days": request.form.get("expires_in_days", "").strip() or None,
        }
        try:
            data = load_form(TokenCreateSchema(), body)
        except ValidationError as exc:
            apply_errors(form, exc.messages)
            status = 422
        else:
            created_secret, _token = users.create_api_token(user, data["name"], data["expires_in_days"])
            form = TokenForm(formdata=None)
    listed = db.session.scalars(users.list_api_tokens(user)).all()
    return render_template("console/tokens.html", form=form, tokens=listed, secret=created_secret), status


@bp.post("/tokens/<id:token_id>/revoke")
@login_required
def token_revoke(token_id):
    users.revoke_api_token(current_user(), token_id)
    flash(_("Token revoked."), "success")
    return redirect(url_for("console.tokens"))
