"""Security headers on every answer of the app, so that `make run` (no nginx) has them too; nginx passes
them on and adds the same ones only to the answers it makes itself (its errors, static files) and HSTS
on TLS. Each is a default: a view or a blueprint may set its own before this hook runs (the /docs page
its Content-Security-Policy; the console its pages' policy and cache headers, the public status pages and
badges `Cache-Control: public`, the badges `Cross-Origin-Resource-Policy: cross-origin`)."""

# JSON only: nothing may be loaded, framed, or submitted from an answer.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Content-Security-Policy": API_CSP,
    # Answers carry tokens (login, new API tokens) and per-user data: no cache along the way keeps them.
    "Cache-Control": "no-store",
}


def init_app(app):
    @app.after_request
    def _security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response
