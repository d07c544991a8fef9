"""Logging in and out (the API's accounts and login limits), and the language switch."""

from flask import g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from console import LANG_COOKIE, LANGUAGES
from console.auth import end_session, safe_next, start_session
from console.forms import LoginForm
from console.views import bp
from services import probes, users
from services.clients import client_address
from services.errors import Forbidden, TooManyRequests, Unauthorized

LANG_COOKIE_MAX_AGE = 365 * 86400


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = safe_next(request.values.get("next"), url_for("console.overview"))
    if g.user is not None:
        return redirect(target)
    form = LoginForm()
    status, headers = 200, {}
    if request.method == "POST":
        username = (form.username.data or "").strip()
        password = form.password.data or ""
        if not username or not password:
            form.form_errors.append(_("Give a username and a password."))
            status = 422
        elif len(username) > 64 or len(password) > 256:
            form.form_errors.append(_("Invalid username or password."))
            status = 401
        else:
            try:
                # The API's login: the same limits, per client and account and per client's failures.
                user, secret, token = users.login(username, password, client_address())
            except TooManyRequests as exc:
                form.form_errors.append(_("Too many login attempts, try again later."))
                status, headers = 429, {"Retry-After": str(exc.retry_after)}
            except Unauthorized:
                form.form_errors.append(_("Invalid username or password."))
                status = 401
            else:
                try:
                    probes.check_access(user, probe_operation=False)
                except Forbidden:
                    users.revoke_token(token)
                    form.form_errors.append(_("A probe agent's account cannot use the console."))
                    status = 403
                else:
                    start_session(secret)
                    return redirect(target)
    return render_template("console/login.html", form=form, next=target), status, headers


@bp.post("/logout")
def logout():
    end_session()
    return redirect(url_for("console.login"))


@bp.get("/lang/<code>")
def language(code):
    """Switch the console's language (a cookie; without it the browser's Accept-Language decides)."""
    response = make_response(redirect(safe_next(request.args.get("next"), url_for("console.overview"))))
    if code in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            code,
            max_age=LANG_COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
    return response
