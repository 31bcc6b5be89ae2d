"""The ``tasktui`` command line.

Each command lives in its own module and is imported only when run, so the
headless commands never import Textual and ``tasktui --version`` stays fast.
A command function takes the parsed arguments and returns the exit code.
"""

from __future__ import annotations

import argparse
import errno
import gc
import importlib
import os
import sys
import time

from . import __version__
from .args import arg_amount, arg_count, arg_port
from .model import PROVIDERS

STARTED = time.monotonic()  # process start, near enough: `wait --timeout` counts from here

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
    "errors": "tui.errlog:cmd_errors",
    "config check": "tui.config:cmd_check",
    "config init": "tui.config:cmd_init",
    "db migrate": "tui.stores:cmd_db",
    "db copy": "tui.stores:cmd_db",
    "pull": "tui.results:cmd_pull",
    "listen": "tui.push:cmd_listen",
    "collect": "tui.collect:cmd_collect",
    "provider test": "tui.providers.declared:cmd_provider_test",
}


def build_parser() -> argparse.ArgumentParser:
    def paths(parser: argparse.ArgumentParser, default) -> argparse.ArgumentParser:
        parser.add_argument("--config", metavar="PATH", default=default,
                            help="config file (default: $TASKTUI_CONFIG or the user config dir)")
        parser.add_argument("--db", metavar="PATH|URL", default=default,
                            help="task database: a SQLite file or a postgresql:// URL"
                                 " (default: $TASKTUI_DB or the user data dir)")
        parser.add_argument("--readonly", action="store_true", default=default,
                            help="open the task database read-only: no add, rm or polling; poll and wait"
                                 " only read what others store (also TASKTUI_READONLY=1, [ui] readonly)")
        return parser

    # Given after the command, --config/--db must not reset what was given before it.
    common = paths(argparse.ArgumentParser(add_help=False), argparse.SUPPRESS)
    parser = paths(argparse.ArgumentParser(
        description="One keyboard-driven screen for the asynchronous jobs of AI media APIs.",
    ), None)
    parser.add_argument("--version", action="version", version=f"tasktui {__version__}")
    parser.add_argument("--offline", action="store_true", help="open the stored state without contacting providers")
    parser.add_argument("--listen", action="store_true",
                        help="also receive provider webhooks while the dashboard polls (address from [listen]; "
                             "see docs/push.md)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                help="without one: the dashboard (needs a terminal)")

    p = sub.add_parser("demo", help="dashboard on the built-in simulator, temporary store")
    p.add_argument("--seed", type=int, default=7, help="scenario seed (default 7)")
    p.add_argument("--tasks", type=arg_count, default=50, help="number of simulated tasks (default 50)")
    p.add_argument("--speed", type=arg_amount, default=1.0, help="simulated time per real second (default 1.0)")
    p.add_argument("--headless", action="store_true", help="run the poller without the dashboard, print progress")

    p = sub.add_parser("simulate", help="serve the simulator over HTTP")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=arg_port, default=8765, help="port (0 picks a free one)")
    p.add_argument("--scenario", metavar="FILE", help="scenario file (JSON or TOML); default: generated")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated scenario (default 7)")
    p.add_argument("--tasks", type=arg_count, default=50, help="tasks in the generated scenario (default 50)")
    p.add_argument("--speed", type=arg_amount, default=1.0, help="simulated time per real second (default 1.0)")
    p.add_argument("--strict", action="store_true",
                   help="serve only the seed documents' endpoints (balance, history and other lists answer 404),"
                        " with the published variants mixed in")
    p.add_argument("--files", action="store_true",
                   help="serve the simulated results' files too (small real pictures, video and audio headers,"
                        " 410 once expired), so previews, o, d and pull work against the simulator")

    providers = ", ".join(PROVIDERS)
    p = sub.add_parser("add", parents=[common], help="track tasks; ID '-' reads ids from stdin",
                       description=f"Track tasks by id. Providers: {providers}.",
                       epilog="Adding a tracked task again with another --kind or --label updates it.")
    p.add_argument("provider", help=f"one of: {providers}")
    p.add_argument("ids", nargs="+", metavar="ID", help="task ids; '-' reads ids from stdin, one a line")
    p.add_argument("--kind", help="task family, e.g. image-relight or text-to-image/hyperflux "
                                  "(an unknown one is accepted with a warning listing the known ones)")
    p.add_argument("--label", help="a label of yours, e.g. batch-7")

    p = sub.add_parser("rm", parents=[common], help="stop tracking tasks (by id, or every task a filter matches)",
                       description="Stop tracking tasks: `rm PROVIDER ID...`, or `rm [PROVIDER] --filter QUERY` "
                                   "for every task the filter matches (`--all`: every task). "
                                   "The provider is not told.")
    p.add_argument("provider", nargs="?", help=f"one of: {providers} (optional with --filter or --all)")
    p.add_argument("ids", nargs="*", metavar="ID", help="task ids; '-' reads ids from stdin, one a line")
    p.add_argument("--filter", metavar="QUERY", default=None,
                   help="remove every task matching QUERY, e.g. 'state:failed' (see README: filter); "
                        "prints the count")
    p.add_argument("--all", action="store_true",
                   help="remove every task (of PROVIDER, if given); needed for an empty filter")

    filter_help = "only tasks matching QUERY, e.g. 'state:failed' or '-state:done' (see README: filter)"
    p = sub.add_parser("ls", parents=[common], help="tasks with their last known state",
                       epilog="A state marked ⚠ is stalled (it cannot progress), ! has failing polls.")
    p.add_argument("--json", action="store_true", help="print a JSON array (the contract of DESIGN.md)")
    p.add_argument("--filter", metavar="QUERY", default="", help=filter_help)

    p = sub.add_parser("poll", parents=[common], help="one refresh round, then print")
    p.add_argument("--json", action="store_true", help="print a JSON array instead of the table")
    p.add_argument("--filter", metavar="QUERY", default="", help=filter_help)

    p = sub.add_parser(
        "wait", parents=[common], help="refresh until every matching task is terminal",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes:\n"
               "  0  every matching task succeeded\n"
               "  1  every matching task ended, and at least one failed, was cancelled or is gone\n"
               "  2  trouble: timed out, no task matches the filter, credentials refused, a bad\n"
               "     config or database, or nothing left can progress (every unfinished task\n"
               "     is stalled or its provider is out of credits); the stuck tasks are listed\n"
               "read-only (--readonly), wait asks no provider: it watches the database while\n"
               "another process (a dashboard, tasktui collect) polls; the codes are the same")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="give up after S seconds, counted from the start of the command (exit 2)")
    p.add_argument("--filter", metavar="QUERY", default="", help=filter_help)
    p.add_argument("--json", action="store_true", help="print the tasks as a JSON array at the end")
    p.add_argument("--notify", nargs="?", const="auto", choices=("auto", "osc9", "osc777"), metavar="MODE",
                   help="when it ends, a terminal desktop notification: osc9 or osc777"
                        " (auto, the default: [ui] notify if it names one, else osc9; inside tmux"
                        " wrapped in its passthrough)")

    p = sub.add_parser("quota", parents=[common], help="per-provider counters")
    p.add_argument("--json", action="store_true", help="print a JSON array, one object per provider")

    p = sub.add_parser("export", parents=[common], help="write every task as JSON or CSV",
                       epilog="CSV: a cell starting with = + - @ tab or CR gets a leading ' "
                              "(so a spreadsheet shows it instead of running it).")
    p.add_argument("--format", choices=("json", "csv"), default="json", help="json (default) or csv")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--filter", metavar="QUERY", default="", help=filter_help)

    p = sub.add_parser("config", parents=[common], help="config tools")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True,
                            help="what to do with the config")
    csub.add_parser("check", parents=[common], help="validate the config; on error name file, key and reason")
    csub.add_parser("init", parents=[common],
                    help="write the commented example config to the config path (never overwrites)")

    # Commands whose modules keep their own arguments (imported here without their heavy parts).
    from .providers import add_provider_parser
    from .push import add_parser as add_listen_parser
    from .stores import add_db_parser

    pull_arguments(sub.add_parser("pull", parents=[common], help="download the results of succeeded tasks"))
    add_listen_parser(sub, [common])
    from .collect import add_parser as add_collect_parser

    add_collect_parser(sub, [common])
    add_db_parser(sub, [common])
    add_provider_parser(sub, [common])
    from .errlog import add_parser as add_errors_parser  # tasktui errors (helper N)

    add_errors_parser(sub, [common])
    return parser


def pull_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tasktui pull`` (here, so building the parser imports no httpx)."""
    parser.add_argument("--filter", metavar="QUERY", default="", help="only tasks matching this filter")
    parser.add_argument("--dir", metavar="DIR", default=".", help="destination folder (default: the current one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per result link")
    parser.add_argument("--max-size", type=arg_amount, default=None, metavar="MB",
                        help="refuse a file larger than this many MB (default 2147, i.e. 2 GiB)")


# Options whose value may start with '-' ("--filter -state:done", "--timeout -1"):
# argparse would take that value for an option of its own.
_DASH_VALUES = ("--filter", "--timeout")


def join_dash_values(argv: list[str]) -> list[str]:
    """``--filter -x`` -> ``--filter=-x`` (what argparse reads as a value)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        # "-state:done" or "-1" is a value; "--json" or "-h" is the next option
        if arg in _DASH_VALUES and nxt.startswith("-") and not nxt.startswith("--") and nxt != "-h":
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


# Commands that write to the task database or ask providers: refused read-only
# (poll and wait degrade instead: they only read what another process stores).
WRITERS = {
    "add": "adds tasks to the task database",
    "rm": "removes tasks from the task database",
    "pull": "records the downloaded files in the task database",
    "listen": "writes what providers push into the task database",
    "collect": "polls providers and writes their answers",
    "db migrate": "changes the database schema",
}
# The read-only stand-ins of the commands that poll.
READONLY_COMMANDS = {"poll": "tui.watch:cmd_poll_readonly", "wait": "tui.watch:cmd_wait_readonly"}
_FALSE = ("", "0", "false", "no", "off")


def readonly_wanted(args: argparse.Namespace, name: str | None) -> bool:
    """--readonly, else TASKTUI_READONLY (any value but 0/false/no/off), else
    ``[ui] readonly`` (read only for the commands it changes)."""
    if getattr(args, "readonly", False):
        return True
    if os.environ.get("TASKTUI_READONLY", "").strip().lower() not in _FALSE:
        return True
    if name is None or (name not in WRITERS and name not in READONLY_COMMANDS):
        return False  # the dashboard reads [ui] readonly itself; reading commands need not know
    try:
        from .config import config_path, load_config

        return bool(load_config(config_path(getattr(args, "config", None))).ui.readonly)
    except Exception:  # a bad config: the command itself says so
        return False


def notify_end(args: argparse.Namespace, code: int) -> None:
    """``wait --notify``: one desktop notification saying how it ended."""
    from .notify import mode_of, send

    mode = args.notify
    if mode == "auto":
        try:
            from .config import config_path, load_config

            mode = mode_of(load_config(config_path(getattr(args, "config", None))).ui.notify) or "osc9"
        except Exception:
            mode = "osc9"
    body = {0: "every matching task succeeded",
            1: "every matching task ended; some did not succeed"}.get(code, "stopped: timed out or trouble"
                                                                            " (see the terminal)")
    if getattr(args, "filter", ""):
        body += f" (filter {args.filter})"
    send(mode, "tasktui wait", body)  # cleaned, wrapped for tmux; nowhere without a terminal


# errors of writing the output (stdout): a full disk or quota, an I/O error, a file too big
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_dash_values(list(sys.argv[1:] if argv is None else argv)))
    name = args.command
    if name in ("config", "db", "provider"):
        name = f"{name} {getattr(args, name + '_command')}"
    target = COMMANDS.get(name)
    if readonly_wanted(args, name):
        args.readonly = True
        if name in WRITERS:
            print(f"tasktui: read-only (--readonly, TASKTUI_READONLY or [ui] readonly): `{name}` "
                  f"{WRITERS[name]}; nothing done", file=sys.stderr)
            return 2
        target = READONLY_COMMANDS.get(name, target)
    if (name is None or (name == "demo" and not args.headless)) and not _is_terminal(sys.stdout):
        print("tasktui: the dashboard needs a terminal (stdout is not one); "
              "use `tasktui ls` or `tasktui wait` in scripts and pipes", file=sys.stderr)
        return 2
    module_name, func_name = target.split(":")
    # Start-up makes many objects and frees few: the cyclic collector would only
    # slow it (~15 % of importing Textual and pydantic).  The dashboard turns it
    # back on once its tasks are loaded and frozen (TaskTUI.on_mount).
    gc.disable()
    func = getattr(importlib.import_module(module_name), func_name)
    if name is not None:
        gc.enable()
    try:
        code = int(func(args) or 0)
        if sys.stdout is not None:
            sys.stdout.flush()  # what is still buffered fails here, not at the interpreter's exit
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `tasktui ls | head`
        try:
            sys.stdout = None  # type: ignore[assignment]
        except Exception:
            pass
        return 0
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRNOS:
            raise
        # `tasktui export > /dev/full`: the output cannot be written (a full disk, a quota)
        print(f"tasktui: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
        try:
            sys.stdout = None  # type: ignore[assignment]  # nothing more goes there, at exit either
        except Exception:
            pass
        return 2
    if name == "wait" and getattr(args, "notify", None):
        notify_end(args, code)
    return code


def _is_terminal(stream) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


if __name__ == "__main__":
    sys.exit(main())
