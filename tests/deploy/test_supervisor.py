"""deploy/supervisor: supervisord's own parser accepts the configuration, and the programs are the ones
docs/deployment.md lists, restartable, stoppable as a group, logging into LOG_DIR."""

import pytest
from supervisor.options import ServerOptions

from tests.deploy.conftest import ROOT, gunicorn_settings

CONF = ROOT / "deploy" / "supervisor" / "supervisord.conf"


@pytest.fixture
def parsed(tmp_path, monkeypatch):
    run_dir, log_dir = tmp_path / "run", tmp_path / "log"
    run_dir.mkdir()
    log_dir.mkdir()
    for name, value in {
        "CLOUDEYE_HOME": str(ROOT),
        "CLOUDEYE_VENV": str(ROOT / ".venv"),
        "CLOUDEYE_RUN_DIR": str(run_dir),
        "LOG_DIR": str(log_dir),
    }.items():
        monkeypatch.setenv(name, value)
    options = ServerOptions()  # reads the ENV_ expansions from the environment now
    options.realize(args=["-c", str(CONF)])
    programs = {p.name: p for group in options.process_group_configs for p in group.process_configs}
    return options, programs, log_dir, run_dir


def test_programs_are_the_three_of_the_deployment(parsed):
    _, programs, _, _ = parsed
    assert set(programs) == {"dataapi", "apisync", "nginx"}  # migrate runs before, not as a program


def test_commands(parsed):
    _, programs, _, run_dir = parsed
    assert programs["dataapi"].command.endswith("/.venv/bin/gunicorn -c api/gunicorn.conf.py cloudeye:app")
    assert programs["apisync"].command.endswith("/.venv/bin/python sync_main.py")
    nginx = programs["nginx"].command
    assert nginx.startswith("nginx ") and f"-c {run_dir}/nginx/nginx.conf" in nginx and "daemon off;" in nginx
    for program in programs.values():
        assert program.directory == str(ROOT)


def test_restart_and_group_stop(parsed):
    _, programs, _, _ = parsed
    graceful = gunicorn_settings()["graceful_timeout"]
    for program in programs.values():
        assert program.autostart and program.autorestart
        assert program.stopasgroup and program.killasgroup
        assert program.stopwaitsecs > graceful
    # nginx starts last and stops first: its keepalive connections go before gunicorn drains.
    assert programs["nginx"].priority > programs["apisync"].priority > programs["dataapi"].priority


def test_logs_go_to_the_log_directory(parsed):
    options, programs, log_dir, run_dir = parsed
    assert options.logfile == str(log_dir / "supervisord.log")
    assert options.pidfile == str(run_dir / "supervisord.pid")
    for program in programs.values():
        assert program.stdout_logfile.startswith(str(log_dir))
        assert program.redirect_stderr


def test_a_broken_configuration_is_rejected(tmp_path, monkeypatch):
    """The parse above can fail: supervisord refuses an option value it does not understand."""
    broken = tmp_path / "supervisord.conf"
    broken.write_text(
        CONF.read_text().replace(
            "[include]\nfiles = conf.d/*.conf", "[program:x]\ncommand=true\nautorestart=sometimes"
        )
    )
    for name in ("CLOUDEYE_HOME", "CLOUDEYE_VENV", "CLOUDEYE_RUN_DIR", "LOG_DIR"):
        monkeypatch.setenv(name, str(tmp_path))
    with pytest.raises(SystemExit):
        ServerOptions().realize(args=["-c", str(broken)])


def test_the_agent_configuration_runs_the_agent_alone(tmp_path, monkeypatch):
    """deploy/supervisor/agent/: supervisor on a probe agent's host, one program."""
    for name, value in {
        "CLOUDEYE_HOME": str(ROOT),
        "CLOUDEYE_VENV": str(ROOT / ".venv"),
        "CLOUDEYE_RUN_DIR": str(tmp_path),
        "LOG_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    options = ServerOptions()
    options.realize(args=["-c", str(ROOT / "deploy" / "supervisor" / "agent" / "supervisord.conf")])
    [program] = [p for group in options.process_group_configs for p in group.process_configs]
    assert program.name == "probeagent"
    assert program.command.endswith("/.venv/bin/python sync_main.py --agent")
    assert program.autorestart and program.stopasgroup and program.stopwaitsecs > 25
    assert options.pidfile == str(tmp_path / "agent-supervisord.pid")
