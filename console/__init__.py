"""The web console at `/` and the public status pages: server-rendered Jinja views over `services/`.

`init_app(app)` binds what the console needs (sessions, CSRF, translations, the blueprint); the app
factory calls it. The console never imports `api/`: it calls the same service functions, with the
logged-in user's permissions.
"""

from datetime import timedelta
from pathlib import Path

from flask import Flask, g, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

HERE = Path(__file__).resolve().parent
LANGUAGES = {"en": "English", "zh": "简体中文"}
LANG_COOKIE = "cloudeye_lang"
# The same policy nginx sends for the console's locations: everything from this origin, nothing inline.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

csrf = CSRFProtect()
babel = Babel()


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, whose cookie is Secure whenever the request came over TLS (nginx
    says so with X-Forwarded-Proto, which gunicorn trusts from nginx only), not only when configured."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app) or request.is_secure)


def select_locale() -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES), default="en")


def _forget_request_state() -> None:
    """Flask-Babel caches the locale and Flask-WTF the CSRF token on `g`, which outlives a request when
    an app context was pushed before it (the tests' clients): start every request without them."""
    g.pop("_flask_babel", None)
    g.pop("csrf_token", None)


def init_app(app: Flask) -> None:
    app.config.setdefault("SESSION_COOKIE_NAME", "cloudeye_session")
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # A console session lasts as long as the login token behind it.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=app.config.get("LOGIN_TOKEN_TTL_S", 43200))
    # Every POST of the console is checked (console.views.check_csrf); the API's bearer-token requests
    # are not (a browser does not send a bearer token on its own, so they need no CSRF token).
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # valid as long as the session
    # The Referer check of HTTPS requests cannot work: nginx sends `Referrer-Policy: no-referrer`. The
    # token and the SameSite=Lax cookie stand without it.
    app.config["WTF_CSRF_SSL_STRICT"] = False
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(HERE / "translations")
    app.session_interface = SessionInterface()
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    app.before_request(_forget_request_state)

    from console import filters
    from console.views import bp

    filters.init_app(app)
    app.register_blueprint(bp)
