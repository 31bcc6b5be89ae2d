"""The ``tasktui`` command line.

Each command lives in its own module and is imported only when run, so the
headless commands never import Textual and ``tasktui --version`` stays fast.
A command function takes the parsed arguments and returns the exit code.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys

from . import __version__

# command -> "module:function"
COMMANDS = {
    None: "tui.app:cmd_dashboard",
    "demo": "tui.demo:cmd_demo",
    "simulate": "tui.sim.serve:cmd_simulate",
    "add": "tui.headless:cmd_add",
    "rm": "tui.headless:cmd_rm",
    "ls": "tui.headless:cmd_ls",
    "poll": "tui.headless:cmd_poll",
    "wait": "tui.headless:cmd_wait",
    "quota": "tui.headless:cmd_quota",
    "export": "tui.headless:cmd_export",
    "config check": "tui.config:cmd_check",
    "config init": "tui.config:cmd_init",
}


def build_parser() -> argparse.ArgumentParser:
    def paths(parser: argparse.ArgumentParser, default) -> argparse.ArgumentParser:
        parser.add_argument("--config", metavar="PATH", default=default,
                            help="config file (default: $TASKTUI_CONFIG or the user config dir)")
        parser.add_argument("--db", metavar="PATH", default=default,
                            help="task database (default: $TASKTUI_DB or the user data dir)")
        return parser

    # Given after the command, --config/--db must not reset what was given before it.
    common = paths(argparse.ArgumentParser(add_help=False), argparse.SUPPRESS)
    parser = paths(argparse.ArgumentParser(
        description="One keyboard-driven screen for the asynchronous jobs of AI media APIs.",
    ), None)
    parser.add_argument("--version", action="version", version=f"tasktui {__version__}")
    parser.add_argument("--offline", action="store_true", help="open the stored state without contacting providers")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="dashboard on the built-in simulator, temporary store")
    p.add_argument("--seed", type=int, default=7, help="scenario seed (default 7)")
    p.add_argument("--tasks", type=int, default=50, help="number of simulated tasks (default 50)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated time per real second (default 1.0)")
    p.add_argument("--headless", action="store_true", help="run the poller without the dashboard, print progress")

    p = sub.add_parser("simulate", help="serve the simulator over HTTP")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    p.add_argument("--scenario", metavar="FILE", help="scenario file (JSON or TOML); default: generated")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--tasks", type=int, default=50)
    p.add_argument("--speed", type=float, default=1.0)

    p = sub.add_parser("add", parents=[common], help="track tasks; ID '-' reads ids from stdin")
    p.add_argument("provider")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--kind", help="task family, e.g. image-relight or text-to-image/hyperflux")
    p.add_argument("--label", help="a label of yours, e.g. batch-7")

    p = sub.add_parser("rm", parents=[common], help="stop tracking tasks")
    p.add_argument("provider")
    p.add_argument("ids", nargs="+", metavar="ID")

    p = sub.add_parser("ls", parents=[common], help="tasks with their last known state")
    p.add_argument("--json", action="store_true")
    p.add_argument("--filter", metavar="QUERY", default="")

    p = sub.add_parser("poll", parents=[common], help="one refresh round, then print")
    p.add_argument("--json", action="store_true")
    p.add_argument("--filter", metavar="QUERY", default="")

    p = sub.add_parser("wait", parents=[common], help="refresh until every matching task is terminal")
    p.add_argument("--timeout", type=float, default=None, metavar="S")
    p.add_argument("--filter", metavar="QUERY", default="")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("quota", parents=[common], help="per-provider counters")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("export", parents=[common], help="write every task as JSON or CSV")
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")

    p = sub.add_parser("config", parents=[common], help="config tools")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    csub.add_parser("check", parents=[common], help="validate the config; on error name file, key and reason")
    csub.add_parser("init", parents=[common],
                    help="write the commented example config to the config path (never overwrites)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    name = args.command
    if name == "config":
        name = f"config {args.config_command}"
    module_name, func_name = COMMANDS[name].split(":")
    # Start-up makes many objects and frees few: the cyclic collector would only
    # slow it (~15 % of importing Textual and pydantic).  The dashboard turns it
    # back on once its tasks are loaded and frozen (TaskTUI.on_mount).
    gc.disable()
    func = getattr(importlib.import_module(module_name), func_name)
    if name is not None:
        gc.enable()
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `tasktui ls | head`
        try:
            sys.stdout = None  # type: ignore[assignment]
        except Exception:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
