"""The ``robustwatch`` command line: one entry point, one subcommand per job.

Exit codes: 0 done, 1 unexpected error, 2 bad usage or configuration, 3 could not start
(Kafka unreachable, reference unreadable).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from agent import __version__, scoring_commands
from agent.logs import configure_logging

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_STARTUP, EXIT_WORKER = 0, 1, 2, 3, 4

log = logging.getLogger("robustwatch")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robustwatch",
        description="Monitor a PyTorch model's live inference traffic for drift and "
        "adversarial inputs, and export it all to Prometheus.",
        epilog="examples:\n"
        "  robustwatch demo --duration 60          # everything on this machine\n"
        "  robustwatch run --config agent.yaml     # the agent against your Kafka\n"
        "  robustwatch score --model model.pt --data test.npz --json report.json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"robustwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="run the agent: consume inference traffic, detect, produce results",
        description="Run the agent until SIGTERM or SIGINT: it finishes the batch in hand, "
        "commits its offsets and exits 0.",
        epilog="example:\n  robustwatch run --config examples/agent.yaml\n"
        "  ROBUSTWATCH_KAFKA__BOOTSTRAP_SERVERS=kafka:9092 robustwatch run --config agent.yaml\n"
        "\nexit codes: 0 stopped cleanly, 2 invalid config, 3 could not start (Kafka "
        "unreachable, detectors not buildable), 4 the detection worker process died",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", required=True, metavar="FILE", help="YAML configuration file")

    demo = sub.add_parser(
        "demo",
        help="run the whole product on this machine with embedded defaults",
        description="Start a local broker, train a small digits classifier, stream clean then "
        "drifted traffic through the agent and print a live summary.",
        epilog="example:\n  robustwatch demo --duration 60",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--rate",
        type=float,
        default=200.0,
        metavar="EVENTS_PER_S",
        help="traffic rate of the simulated model (default 200)",
    )
    demo.add_argument(
        "--metrics-port",
        type=int,
        default=9108,
        metavar="PORT",
        help="port of the metrics endpoint (default 9108; 0 picks a free one)",
    )
    scoring_commands.add_parsers(sub, argparse.RawDescriptionHelpFormatter)
    return parser


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum, frame):
        log.info("received %s: finishing the batch in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def _cmd_run(args: argparse.Namespace) -> int:
    from agent.config import load_config
    from agent.exceptions import ConfigError, StartupError, WorkerError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"robustwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(config.logging.level, config.logging.format)
    from agent.runner import Agent

    stop = _stop_on_signals()
    try:
        agent = Agent(config)
        agent.start_metrics_server()
        agent.run(stop)
    except StartupError as exc:
        print(f"robustwatch: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    except WorkerError as exc:
        print(f"robustwatch: {exc}", file=sys.stderr)
        return EXIT_WORKER
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    configure_logging("WARNING")
    from agent.demo.run import run_demo

    stop = _stop_on_signals()
    return run_demo(
        duration=args.duration, rate=args.rate, metrics_port=args.metrics_port, stop=stop
    )


COMMANDS = {
    "run": _cmd_run,
    "demo": _cmd_demo,
    **dict.fromkeys(scoring_commands.COMMANDS, scoring_commands.run),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
