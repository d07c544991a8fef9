"""Entry point of the sync worker.

    python sync_main.py                # run the worker until SIGTERM/SIGINT, then exit 0
    python sync_main.py --once         # one pass: claim what is due, probe, store, import the inbox,
                                       # send the notifications due
    python sync_main.py --healthcheck  # exit 0 when this host's worker has a fresh heartbeat, else 1
    python sync_main.py --agent        # a remote probe agent: no database, no Redis, only the API
                                       # (CLOUDEYE_API_URL, CLOUDEYE_API_TOKEN); --healthcheck with it

Compose and supervisor run exactly these commands (docs/sync.md).
"""

import argparse
import logging
import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sync_main.py", description="cloudeye sync worker")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--healthcheck", action="store_true", help="exit 0 when this host's worker is alive")
    mode.add_argument("--once", action="store_true", help="run one pass of every job and exit")
    parser.add_argument(
        "--agent",
        action="store_true",
        help="run as a remote probe agent (CLOUDEYE_API_URL, CLOUDEYE_API_TOKEN)",
    )
    args = parser.parse_args(argv)
    if args.agent:
        if args.once:
            parser.error("--once is not for an agent")
        return agent_healthcheck() if args.healthcheck else run_agent()

    from services.config import Config, ConfigError

    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"sync: configuration error: {exc}", file=sys.stderr)
        return 2

    if args.healthcheck:
        return healthcheck(config)

    from services.app import create_core_app
    from sync.worker import Worker

    app = create_core_app(config, role="sync")
    worker = Worker(app)
    if args.once:
        with app.app_context():
            report = worker.run_once()
            worker.inbox.run()
            sent = worker.notifier.run_once()
        logging.getLogger("sync").info("one pass: %d checks stored, notifications %s", report.stored, sent)
        return 0
    worker.install_signal_handlers()
    return worker.run()


def run_agent() -> int:
    """The agent builds no app: its settings are its own (sync/agent.py), and it touches no database."""
    from services.log import get_logger, process_log_name, prune_old_logs
    from sync.agent import Agent, AgentSettings, SettingsError

    try:
        settings = AgentSettings.from_env()
    except SettingsError as exc:
        print(f"agent: configuration error: {exc}", file=sys.stderr)
        return 2
    get_logger(
        None,
        fname=process_log_name("agent"),
        log_dir=settings.log_dir,
        level=settings.log_level,
        type=settings.log_type,
    )
    prune_old_logs(settings.log_dir, settings.log_retention_days)
    agent = Agent(settings)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    return agent.run()


def agent_healthcheck() -> int:
    from sync.agent import is_alive

    alive = is_alive()
    print("agent: healthy" if alive else "agent: its loop has not turned lately", file=sys.stderr)
    return 0 if alive else 1


def healthcheck(config) -> int:
    from sync.heartbeat import is_fresh

    try:
        fresh = is_fresh(config, config.SYNC_WORKER_ID)
    except Exception as exc:  # unreachable Redis or database: not healthy
        print(f"sync: healthcheck failed: {exc}", file=sys.stderr)
        return 1
    print("sync: healthy" if fresh else "sync: no fresh heartbeat", file=sys.stderr)
    return 0 if fresh else 1


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    # Probe threads stuck past the grace period must not hold the exit (their claims were given back).
    os._exit(code)
