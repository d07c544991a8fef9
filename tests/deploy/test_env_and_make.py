"""`.env.example` documents every variable; `make env` generates secrets production accepts and never
overwrites; the Makefile has the targets the deployment docs name, with `help` as the default."""

import os
import re
import subprocess

import pytest

from tests.deploy.conftest import ROOT, env_example_names

SECRETS = ("SECRET_KEY", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD", "CLOUDEYE_ADMIN_PASSWORD")


def parse_env(path) -> dict:
    values = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def test_gunicorn_nginx_and_stack_variables_are_documented():
    documented = env_example_names()
    gunicorn = {
        f"GUNICORN_{name}"
        for name in re.findall(r'_env\("([A-Z_]+)"', (ROOT / "api/gunicorn.conf.py").read_text())
    }
    nginx = set(re.findall(r"^(NGINX_[A-Z_]+)=\$\{\1", (ROOT / "nginx/render.sh").read_text(), re.MULTILINE))
    stack = set()
    for script in ("stack-up.sh", "stack-lib.sh"):
        stack |= set(re.findall(r"\$\{((?:STACK|CLOUDEYE)_[A-Z_]+)", (ROOT / "scripts" / script).read_text()))
    base_images = set(re.findall(r"\$\{(BASE_IMAGES_[A-Z_]+)", (ROOT / "scripts/base-images.sh").read_text()))
    assert len(gunicorn) >= 14 and len(nginx) >= 20 and len(stack) >= 10 and len(base_images) >= 4
    assert (gunicorn | nginx | stack | base_images) - documented == set()


def test_every_variable_the_python_code_reads_is_documented():
    pattern = re.compile(
        r"""(?:environ\.get|getenv|environ\[|env\.get|_env_int|_env_float|_env_bool|_env_networks)\(?\s*["']([A-Z][A-Z0-9_]*)["']"""
    )
    sources = [ROOT / "cloudeye.py", ROOT / "sync_main.py"]
    for package in ("services", "api", "sync"):
        sources += sorted((ROOT / package).rglob("*.py"))
    read = set()
    for source in sources:
        read |= set(pattern.findall(source.read_text()))
    # gunicorn.conf.py's _env("X") reads GUNICORN_X.
    read |= {
        f"GUNICORN_{name}"
        for name in re.findall(r'_env\("([A-Z_]+)"', (ROOT / "api/gunicorn.conf.py").read_text())
    }
    assert {
        "DATABASE_URL",
        "CLOUDEYE_ROLE",
        "GUNICORN_DB_POOL_SIZE",
        "DB_POOL_SIZE",
        "SYNC_CONCURRENCY",
    } <= read
    assert read - env_example_names() == set()


def test_example_leaves_the_secrets_empty():
    values = parse_env(ROOT / ".env.example")
    assert {name: values[name] for name in SECRETS} == dict.fromkeys(SECRETS, "")


def test_make_env_generates_secrets_production_accepts(tmp_path, monkeypatch):
    target = tmp_path / ".env"
    result = subprocess.run([str(ROOT / "scripts/make-env.sh"), str(target)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    values = parse_env(target)
    assert all(len(values[name]) >= 16 and re.fullmatch(r"[A-Za-z0-9_-]+", values[name]) for name in SECRETS)
    assert len(set(values[name] for name in SECRETS)) == len(SECRETS)
    # Everything else is the example's, line for line.
    example = (ROOT / ".env.example").read_text().splitlines()
    generated = target.read_text().splitlines()
    assert len(example) == len(generated)
    assert [a for a, b in zip(example, generated, strict=True) if a != b] == [f"{name}=" for name in SECRETS]

    # The values compose derives from them pass production's checks.
    from services.config import Config

    monkeypatch.setenv("CLOUDEYE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", values["SECRET_KEY"])
    monkeypatch.setenv("CLOUDEYE_ADMIN_PASSWORD", values["CLOUDEYE_ADMIN_PASSWORD"])
    monkeypatch.setenv(
        "DATABASE_URL", f"mysql+pymysql://cloudeye:{values['MYSQL_PASSWORD']}@mysql:3306/cloudeye"
    )
    assert Config.from_env().SECRET_KEY == values["SECRET_KEY"]


def test_make_env_never_overwrites(tmp_path):
    target = tmp_path / ".env"
    target.write_text("SECRET_KEY=mine\n")
    result = subprocess.run([str(ROOT / "scripts/make-env.sh"), str(target)], capture_output=True, text=True)
    assert result.returncode == 0 and "left untouched" in result.stdout
    assert target.read_text() == "SECRET_KEY=mine\n"


def make(*args, cwd=ROOT):
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60
    )


def test_help_is_the_default_and_lists_the_targets():
    result = make("-f", str(ROOT / "Makefile"), "help")
    default = make("-f", str(ROOT / "Makefile"))
    assert result.returncode == 0 and default.stdout == result.stdout
    listed = set(re.findall(r"^  (\S+)", result.stdout, re.MULTILINE))
    expected = {"help", "env", "up", "down", "logs", "ps", "migrate", "makemigrations", "shell", "run", "stack",
                "stack-down", "test", "lint", "bench", "staging-up", "staging-down", "staging-pull", "venv",
                "base-images", "e2e"}  # fmt: skip
    assert expected <= listed


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "up",
            [
                "compose up -d --wait mysql redis",
                "compose run --rm migrate",
                "compose up -d --wait --no-deps",
            ],
        ),
        ("migrate", ["compose run --rm migrate"]),
        # A fresh checkout's database is behind head, and `flask db migrate` refuses to autogenerate then.
        ("makemigrations", ["flask db upgrade", "flask db migrate -m"]),
        ("staging-up", ["compose.staging.yaml pull", "compose.staging.yaml run --rm migrate", "--no-build"]),
        ("stack", ["scripts/stack-up.sh"]),
        # No registry: Docker made to run, then the stand-ins built and named in .env.
        ("base-images", ["scripts/ensure-docker.sh", "scripts/base-images.sh"]),
        # The compose suite runs with an engine (installed and started when needed, then stopped).
        ("test", ["ruff check", "scripts/ensure-services.sh", "scripts/with-docker.sh .venv/bin/pytest"]),
        ("e2e", ["scripts/with-docker.sh .venv/bin/pytest tests/compose"]),
        ("stack-down", ["scripts/stack-down.sh"]),
    ],
)
def test_targets_run_the_documented_commands(target, expected):
    # -n prints the recipe; -o skips the prerequisites that would touch .env or the venv.
    result = make("-n", "-o", ".env", "-o", "venv", target, "m=a change")
    assert result.returncode == 0, result.stderr
    output = result.stdout
    positions = [output.find(fragment) for fragment in expected]
    assert -1 not in positions, output
    assert positions == sorted(positions), "commands out of order"


def test_make_up_keeps_the_replicas_asked_for():
    default = make("-n", "-o", ".env", "up")
    assert "--no-deps --scale api=1 --scale sync=1 api sync nginx" in default.stdout, default.stdout
    scaled = make("-n", "-o", ".env", "up", "API_REPLICAS=3", "SYNC_REPLICAS=2")
    assert "--scale api=3 --scale sync=2 api sync nginx" in scaled.stdout
    staging = make("-n", "-o", "staging-pull", "-o", "staging-migrate", "staging-up", "API_REPLICAS=3")
    assert "--no-build --no-deps --scale api=3 --scale sync=1 api sync nginx" in staging.stdout


def test_readme_covers_the_deployment():
    """Issue 4: the Docker quick start, make migrate, upgrading, staging, the no-Docker stack, backups."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploying", 1)[1].split("\n## ", 1)[0]
    for needed in ("make env", "make up", "make migrate", "Upgrading", "compose.staging.yaml", "make staging-up",
                   "make stack", "make stack-down", "mysqldump", "mysql-data"):  # fmt: skip
        assert needed in section, needed


def test_two_gunicorn_instances_never_share_a_control_socket():
    from tests.deploy.conftest import gunicorn_settings

    first = gunicorn_settings(GUNICORN_BIND="127.0.0.1:8000")["control_socket"]
    second = gunicorn_settings(GUNICORN_BIND="127.0.0.1:8081")["control_socket"]
    assert first != second and first.endswith("cloudeye-127.0.0.1_8000.ctl")
    assert gunicorn_settings(GUNICORN_CONTROL_SOCKET="/run/x.ctl")["control_socket"] == "/run/x.ctl"
    stack_up = (ROOT / "scripts" / "stack-up.sh").read_text()
    assert 'GUNICORN_CONTROL_SOCKET=%q\\n\' "$CLOUDEYE_RUN_DIR/gunicorn.ctl"' in stack_up
