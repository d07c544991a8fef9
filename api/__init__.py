"""The HTTP layer: `create_app()` = core app + OpenAPI + blueprint v1 + errors + auth, and the web console."""

import os

from apispec import BasePlugin
from flask_smorest import Api

from api.common import MAX_ID, IdConverter, JSONProvider, SchemaRulesPlugin
from api.errors import ErrorResponsesPlugin, ErrorSchema
from services.app import create_core_app
from services.config import API_PREFIX, Config


class CloudeyeApi(Api):
    """flask-smorest's Api with cloudeye's JSON error shape."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        from api.errors import handle_http_exception

        return handle_http_exception(error)


class MultipartFormPlugin(BasePlugin):
    """flask-smorest documents only one request body per view: with `location="form"` and
    `location="files"` on one view (a multipart upload with fields), the form fields are left behind
    as `in: formData` parameters, which OpenAPI 3 does not have. This folds them into the multipart
    body schema, so the document stays valid and clients (and the fuzzer) send them as form fields."""

    def init_spec(self, spec):
        self.spec = spec

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            if not isinstance(operation, dict):
                continue
            form = [
                p
                for p in operation.get("parameters", [])
                if isinstance(p, dict) and p.get("in") == "formData"
            ]
            media = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            if not form or media is None:
                continue
            body = self._resolve(media.get("schema"))
            properties = dict(body.get("properties", {}))
            required = list(body.get("required", []))
            for param in form:
                properties[param["name"]] = {**param.get("schema", {}), **_described(param)}
                if param.get("required"):
                    required.append(param["name"])
            media["schema"] = {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": body.get("additionalProperties", False),  # webargs: unknown=RAISE
            }
            operation["parameters"] = [p for p in operation["parameters"] if p not in form]
            if not operation["parameters"]:
                del operation["parameters"]

    def _resolve(self, schema) -> dict:
        ref = schema.get("$ref") if isinstance(schema, dict) else schema
        if isinstance(ref, str):
            return self.spec.components.schemas.get(ref.rsplit("/", 1)[-1], {})
        return schema or {}


def _described(param: dict) -> dict:
    return {"description": param["description"]} if param.get("description") else {}


def create_app(config: Config | None = None, role: str | None = None):
    # The same WSGI module serves gunicorn and the `flask` CLI (migrate job); CLOUDEYE_ROLE names the
    # process in its log file name.
    app = create_core_app(config, role=role or os.environ.get("CLOUDEYE_ROLE") or "api")
    app.json = JSONProvider(app)
    app.url_map.converters["id"] = IdConverter
    app.config["API_SPEC_OPTIONS"] = {
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
        "info": {"description": "cloudeye: usability, tamper and bug monitoring of websites."},
    }

    from api import docs, errors, headers, health, request_id
    from api.v1 import register_v1
    from services import uploads

    request_id.init_app(app)
    headers.init_app(app)
    uploads.init_app(app)
    api = CloudeyeApi(
        app,
        spec_kwargs={"extra_plugins": [MultipartFormPlugin(), ErrorResponsesPlugin(), SchemaRulesPlugin()]},
    )
    api.register_converter(IdConverter, lambda _: {"type": "integer", "minimum": 1, "maximum": MAX_ID})
    errors.init_app(app)
    register_v1(api)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp, url_prefix=API_PREFIX)

    # The web console and public status pages share the process (and the `id` URL converter above);
    # they call services/ like the API does and import nothing of it.
    import console

    console.init_app(app)
    return app
