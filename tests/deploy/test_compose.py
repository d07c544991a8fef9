"""compose.yaml and compose.staging.yaml: valid Compose Specification, and the properties issue 4 asks of
them (one-shot migrate, readiness healthchecks, only nginx published, scaling, secrets, limits)."""

import copy
import json
import re

import jsonschema
import pytest

from tests.deploy.conftest import ROOT, env_example_names, gunicorn_settings

SERVICES = {"nginx", "api", "sync", "migrate", "mysql", "redis"}
LONG_RUNNING = SERVICES - {"migrate"}
APP_SERVICES = {"api", "sync", "migrate"}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")


def schema_validator():
    schema = json.loads((ROOT / "tests" / "deploy" / "compose_spec.json").read_text())
    return jsonschema.Draft201909Validator(schema)


def errors_of(document: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in schema_validator().iter_errors(document)
    ]


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration):
        total += float(number) * units[unit]
    assert total > 0, f"unparsable duration {duration!r}"
    return total


def merge(base, override):
    """Compose's merge of an override file, enough for validation: mappings merge, `ports` concatenate,
    `volumes` of a service merge by container path."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if key in merged and key == "volumes" and isinstance(value, list):
                by_target = {entry.split(":")[1]: entry for entry in merged[key]}
                by_target.update({entry.split(":")[1]: entry for entry in value})
                merged[key] = list(by_target.values())
            elif key in merged and isinstance(value, list) and isinstance(merged[key], list):
                merged[key] = merged[key] + value
            else:
                merged[key] = merge(merged.get(key), value) if key in merged else value
        return merged
    return copy.deepcopy(override)


def test_compose_files_follow_the_compose_specification(compose, staging):
    assert errors_of(compose) == []
    assert errors_of(staging) == []
    assert errors_of(merge(compose, staging)) == []


def test_the_schema_check_catches_mistakes(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["api"]["restart_policy"] = "always"
    assert len(errors_of(broken)) >= 2


def test_no_version_key_and_the_expected_services(compose):
    assert "version" not in compose
    assert set(compose["services"]) == SERVICES


def default_of(value: str, variable: str) -> str:
    """The default of `${VARIABLE:-default}`, the whole value."""
    match = re.fullmatch(r"\$\{" + variable + r":-([^}]+)\}", value)
    assert match, f"{value!r} is not ${{{variable}:-default}}"
    return match.group(1)


def dockerfile_arg_default(path: str, name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", (ROOT / path).read_text(), flags=re.MULTILINE)
    assert match, f"{path} has no ARG {name}=default"
    return match.group(1)


def test_images_are_pinned(compose):
    # The official images by default; `make base-images` names local stand-ins in .env instead.
    assert re.fullmatch(r"mysql:8\.4\.\d+", default_of(compose["services"]["mysql"]["image"], "MYSQL_IMAGE"))
    assert re.fullmatch(
        r"redis:\d+\.\d+\.\d+(-alpine)?", default_of(compose["services"]["redis"]["image"], "REDIS_IMAGE")
    )
    api_image = compose["services"]["api"]["image"]
    for name in APP_SERVICES:
        assert compose["services"][name]["image"] == api_image, "api, sync and migrate share one image"
        assert compose["services"][name]["build"]["context"] == "."


def test_base_images_can_be_swapped_and_default_to_the_dockerfiles(compose):
    """compose passes PYTHON_IMAGE and NGINX_BASE_IMAGE to the builds, defaulting to what the Dockerfiles
    default to, so a build without .env and a build with compose agree."""
    python = compose["services"]["api"]["build"]["args"]["PYTHON_IMAGE"]
    assert default_of(python, "PYTHON_IMAGE") == dockerfile_arg_default("Dockerfile", "PYTHON_IMAGE")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", default_of(python, "PYTHON_IMAGE"))
    nginx = compose["services"]["nginx"]["build"]["args"]["NGINX_BASE_IMAGE"]
    assert default_of(nginx, "NGINX_BASE_IMAGE") == dockerfile_arg_default(
        "nginx/Dockerfile", "NGINX_BASE_IMAGE"
    )
    for path, name in (("Dockerfile", "PYTHON_IMAGE"), ("nginx/Dockerfile", "NGINX_BASE_IMAGE")):
        assert f"FROM ${{{name}}}" in (ROOT / path).read_text()


def test_migrate_is_a_one_shot_job_the_app_waits_for(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["flask", "setup"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["mysql"]["condition"] == "service_healthy"
    for name in ("api", "sync"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["mysql"]["condition"] == "service_healthy"


def test_commands_are_the_ones_supervisor_runs(compose):
    assert compose["services"]["api"]["command"] == ["gunicorn", "-c", "api/gunicorn.conf.py", "cloudeye:app"]
    assert compose["services"]["sync"]["command"] == ["python", "sync_main.py"]
    for name in ("dataapi", "apisync"):
        text = (ROOT / "deploy" / "supervisor" / "conf.d" / f"{name}.conf").read_text()
        expected = (
            "gunicorn -c api/gunicorn.conf.py cloudeye:app" if name == "dataapi" else "python sync_main.py"
        )
        assert expected in text


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_long_running_services_have_readiness_checks_restart_and_log_limits(compose, name):
    service = compose["services"][name]
    assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}
    assert service["restart"] in {"unless-stopped", "always"}
    options = service["logging"]["options"]
    assert options["max-size"] and options["max-file"]


def test_migrate_logs_are_limited_too(compose):
    assert compose["services"]["migrate"]["logging"]["options"]["max-size"]


def test_readiness_means_what_it_says(compose):
    services = compose["services"]
    mysql = " ".join(services["mysql"]["healthcheck"]["test"])
    # TCP (the init phase's server has networking off), the app's user, the app's database.
    assert "--protocol=TCP" in mysql and "$$MYSQL_USER" in mysql and "$$MYSQL_DATABASE" in mysql
    assert services["api"]["healthcheck"]["test"][-1].endswith("/readyz")
    assert services["sync"]["healthcheck"]["test"] == ["CMD", "python", "sync_main.py", "--healthcheck"]
    assert services["nginx"]["healthcheck"]["test"][-1].endswith("/nginx-health")
    assert "ping" in " ".join(services["redis"]["healthcheck"]["test"])


def test_only_nginx_publishes_a_port_and_nothing_pins_a_container(compose):
    for name, service in compose["services"].items():
        assert "container_name" not in service, f"{name}: container_name prevents --scale"
        if name != "nginx":
            assert "ports" not in service, f"{name} must not publish a port"
    assert compose["services"]["nginx"]["ports"]


def test_api_and_sync_can_scale(compose):
    for name in ("api", "sync"):
        service = compose["services"][name]
        assert "ports" not in service and "container_name" not in service and "hostname" not in service
    # nginx follows the replicas: Docker's DNS name `api`, re-resolved at run time.
    env = compose["services"]["nginx"]["environment"]
    assert env["NGINX_UPSTREAM"].split(":")[0] == "api"
    assert env["NGINX_RESOLVER"] == "127.0.0.11"


def test_stop_grace_outlasts_the_graceful_shutdowns(compose):
    from services.config import Config

    graceful = gunicorn_settings()["graceful_timeout"]
    assert seconds(compose["services"]["api"]["stop_grace_period"]) > graceful
    assert seconds(compose["services"]["sync"]["stop_grace_period"]) > Config().SYNC_GRACE_PERIOD_S


def test_volumes_are_named_and_shared(compose):
    assert {"mysql-data", "log", "data"} <= set(compose["volumes"])
    assert "mysql-data:/var/lib/mysql" in compose["services"]["mysql"]["volumes"]
    for name in APP_SERVICES:
        assert {"log:/app/log", "data:/app/data"} <= set(compose["services"][name]["volumes"])
    assert "./mysql-init:/docker-entrypoint-initdb.d:ro" in compose["services"]["mysql"]["volumes"]


def test_secrets_are_required_not_defaulted(compose):
    text = (ROOT / "compose.yaml").read_text()
    for name in ("SECRET_KEY", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD", "CLOUDEYE_ADMIN_PASSWORD"):
        uses = re.findall(r"\$\{" + name + r"(:?[-?])?[^}]*\}", text)
        assert uses, f"{name} is not used"
        assert all(operator == ":?" for operator in uses), f"{name} must be ${{{name}:?...}}"


def strings_in(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)
    elif isinstance(node, str):
        yield node


def test_every_variable_compose_references_is_documented(compose, staging):
    documented = env_example_names()
    for name, document in (("compose.yaml", compose), ("compose.staging.yaml", staging)):
        # $$X is the container's own variable, not one compose interpolates.
        referenced = {
            var for text in strings_in(document) for var in VARIABLE.findall(text.replace("$$", ""))
        }
        assert {"CLOUDEYE_TAG"} <= referenced, name
        assert referenced - documented == set(), f"{name} references undocumented variables"


def test_every_application_setting_reaches_the_app_containers(compose):
    """A variable of services/config.py set in .env must reach api, sync and migrate."""
    source = (ROOT / "services" / "config.py").read_text()
    settings = set(
        re.findall(
            r"""(?:env\.get|_env_int|_env_float|_env_bool|os\.environ\.get)\(\s*["']([A-Z][A-Z0-9_]*)["']""",
            source,
        )
    )
    settings -= {"PORT"}  # `make run` only
    assert {"DATABASE_URL", "SECRET_KEY", "MAX_REPORT_BYTES"} <= settings
    for name in APP_SERVICES:
        environment = compose["services"][name]["environment"]
        assert settings - set(environment) == set(), f"{name} does not receive these settings"
    assert settings - env_example_names() == set(), ".env.example does not document these settings"


# Read by gunicorn.conf.py / render.sh, yet deliberately not taken from .env under compose: the bind address
# and the trusted peers compose fixes, a pid file the container does not need, and the nginx image's paths
# (TLS ones: compose.staging.yaml).
NOT_FROM_ENV_FILE = {
    "GUNICORN_BIND",
    "GUNICORN_FORWARDED_ALLOW_IPS",
    "GUNICORN_PIDFILE",
    "NGINX_LISTEN",
    "NGINX_UPSTREAM",
    "NGINX_RESOLVER",
    "NGINX_TLS",
    "NGINX_TLS_LISTEN",
    "NGINX_TLS_CERT",
    "NGINX_TLS_KEY",
    "NGINX_CONF_SRC",
    "NGINX_OUT_DIR",
    "NGINX_DENY_FILE",
    "NGINX_STATIC_ROOT",
    "NGINX_CONSOLE_STATIC_ROOT",
    "NGINX_MIME_TYPES",
    "NGINX_PID",
    "NGINX_ACCESS_LOGS",
    "NGINX_ERROR_LOGS",
    "NGINX_TEMP_DIR",
    "NGINX_USER",
}


def test_gunicorn_and_nginx_settings_in_env_reach_their_containers(compose):
    """A tunable .env.example documents for gunicorn or nginx must get into the container that reads it:
    compose passes only what a service's `environment` names."""
    gunicorn = {
        f"GUNICORN_{name}"
        for name in re.findall(r'_env\("([A-Z_]+)"', (ROOT / "api/gunicorn.conf.py").read_text())
    }
    render = (ROOT / "nginx/render.sh").read_text()
    nginx = set(re.findall(r"^((?:NGINX|GUNICORN|MAX)_[A-Z_]+)=\$\{\1", render, re.MULTILINE))
    assert {"GUNICORN_KEEPALIVE", "NGINX_WORKER_PROCESSES", "NGINX_CONF_SRC"} <= gunicorn | nginx
    for service, names in (("api", gunicorn), ("nginx", nginx)):
        environment = compose["services"][service]["environment"]
        missing = {name for name in names - NOT_FROM_ENV_FILE if name not in environment}
        assert missing == set(), f"{service} never receives {sorted(missing)} from .env"
        for name in names - NOT_FROM_ENV_FILE:
            assert environment[name] == f"${{{name}:-}}" or environment[name].startswith(f"${{{name}:-"), name


def test_ports_and_names_agree_between_nginx_compose_and_gunicorn(compose):
    services = compose["services"]
    upstream_host, upstream_port = services["nginx"]["environment"]["NGINX_UPSTREAM"].split(":")
    assert upstream_host in services
    api = services[upstream_host]
    bind_port = api["environment"]["GUNICORN_BIND"].rsplit(":", 1)[1]
    assert upstream_port == bind_port == gunicorn_settings()["bind"].rsplit(":", 1)[1]
    assert api["expose"] == [bind_port]
    assert f"127.0.0.1:{bind_port}/readyz" in api["healthcheck"]["test"][-1]
    # nginx listens where compose publishes it and where its healthcheck looks.
    listen = services["nginx"]["environment"]["NGINX_LISTEN"]
    assert all(port.endswith(f":{listen}") for port in services["nginx"]["ports"])
    assert services["nginx"]["healthcheck"]["test"][-1] == "http://127.0.0.1/nginx-health"  # port 80
    assert listen == "80"
    # The app's database and cache are the compose services.
    env = services["api"]["environment"]
    assert "@mysql:3306/" in env["DATABASE_URL"] and env["REDIS_URL"].startswith("redis://redis:6379/")


def test_staging_uses_released_images_tls_and_limits(compose, staging):
    services = staging["services"]
    for name in APP_SERVICES | {"nginx"}:
        assert re.fullmatch(
            r"\$\{CLOUDEYE_(NGINX_)?IMAGE:-[^}]+\}:\$\{CLOUDEYE_TAG:\?[^}]+\}", services[name]["image"]
        )
    for name in SERVICES:
        limits = services[name]["deploy"]["resources"]["limits"]
        assert limits["cpus"] and limits["memory"]
    # No source mounted into the Python services, whatever the base file does.
    for name in APP_SERVICES:
        volumes = merge(compose, staging)["services"][name].get("volumes", [])
        assert all(not entry.startswith((".", "/")) for entry in volumes), volumes
    nginx = services["nginx"]
    assert nginx["environment"]["NGINX_TLS"] == "on"
    assert any(entry.endswith(":/etc/nginx/certs:ro") for entry in nginx["volumes"])
    assert any(port.endswith(":443") for port in nginx["ports"])
    assert all("build" not in service for service in services.values())


def test_makefile_runs_staging_without_building():
    makefile = (ROOT / "Makefile").read_text()
    assert "-f compose.yaml -f compose.staging.yaml" in makefile
    staging_up = makefile.split("staging-up:", 1)[1].split("\n.PHONY", 1)[0]
    assert "--no-build" in staging_up and "--wait" in staging_up


def test_api_workers_get_a_database_pool_for_their_concurrency(monkeypatch):
    monkeypatch.delenv("DB_POOL_SIZE", raising=False)
    assert gunicorn_settings()["raw_env"] == ["DB_POOL_SIZE=32"]  # gevent, the default
    assert gunicorn_settings(GUNICORN_DB_POOL_SIZE="48")["raw_env"] == ["DB_POOL_SIZE=48"]
    assert gunicorn_settings(GUNICORN_WORKER_CLASS="gthread", GUNICORN_THREADS="8")["raw_env"] == [
        "DB_POOL_SIZE=8"
    ]
    monkeypatch.setenv("DB_POOL_SIZE", "5")
    assert gunicorn_settings()["raw_env"] == []  # an explicit setting wins
    monkeypatch.setenv("DB_POOL_SIZE", "")  # compose's `${DB_POOL_SIZE:-}` when .env leaves it out
    assert gunicorn_settings()["raw_env"] == ["DB_POOL_SIZE=32"]


def test_the_agent_compose_file_runs_the_agent_alone():
    """compose.agent.yaml: a probe agent on another host, from the same image, with nothing but the API."""
    from tests.deploy.conftest import load_yaml

    agent = load_yaml("compose.agent.yaml")
    assert errors_of(agent) == []
    [service] = agent["services"].values()
    assert service["command"] == ["agent"] and service["build"]["context"] == "."
    assert service["healthcheck"]["test"] == ["CMD", "python", "sync_main.py", "--agent", "--healthcheck"]
    environment = service["environment"]
    assert not {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"} & set(environment)
    for name in ("CLOUDEYE_API_URL", "CLOUDEYE_API_TOKEN"):
        assert environment[name].startswith(f"${{{name}:?"), f"{name} must be required"
    referenced = {var for text in strings_in(agent) for var in VARIABLE.findall(text.replace("$$", ""))}
    assert referenced - env_example_names() == set()
    # Every setting the agent reads reaches it.
    source = (ROOT / "sync" / "agent.py").read_text()
    read = set(re.findall(r"""(?:env\.get|_number\(env,)\(?\s*["']([A-Z][A-Z0-9_]*)["']""", source))
    assert {"CLOUDEYE_API_URL", "AGENT_BUFFER_MAX", "SYNC_CONCURRENCY"} <= read
    assert read - set(environment) == set()
    assert seconds(service["stop_grace_period"]) > 25
