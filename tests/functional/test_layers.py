"""The layers hold, and docs/architecture.md says what the code does (issue #14).

- No module imports upward.  Data flows providers -> engine -> store -> widgets;
  each module has a layer (LAYERS) and imports only from its own layer or
  below, top-level and function-level imports alike.  A new module must be
  given a layer here (and a row in the doc).
- The doc's "may import" table: every ``tui`` module a file imports is named
  in its row (a name covers its submodules: ``providers`` covers
  ``providers.base``), and a file that imports Textual has ``textual`` in it.
- The headless side never loads Textual: importing the command line, the
  engine, the store and running ``tasktui ls`` leave ``textual`` out of
  ``sys.modules``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUI = ROOT / "tui"
DOC = ROOT / "docs" / "architecture.md"

# Lower layers never import higher ones.  A name covers its submodules.
LAYERS: list[tuple[str, ...]] = [
    # 0: foundations (stdlib and small libraries only)
    ("model", "text", "ids", "timefmt", "paths", "redact", "budget", "resources", "metrics", "styles",
     "args", "__version__"),
    # 1: what the providers are, what the user configured, the filter language, the action table
    ("providers", "config", "filter", "actions"),
    # 2: the task store and what shares it
    ("store", "store_pg", "stores", "lease"),
    # 3: polling
    ("engine",),
    # 4: the headless commands and services, and the words both sides print (no Textual:
    # widgets.cells formats a row's cells, healthfmt a provider's health)
    ("headless", "push", "collect", "errlog", "results", "autopull", "watch", "notify", "healthfmt",
     "widgets.cells"),
    # 5: the Textual pieces
    ("widgets", "screens", "preview", "graphics", "messages"),
    # 6: the dashboard and the demo
    ("app", "demo"),
    # 7: the command line
    ("cli", "__main__"),
]
SELF_CONTAINED = ("sim",)  # the simulator imports nothing of tui outside itself

# Known upward imports, each with its reason (a new one fails the test).
KNOWN_UPWARD = {
    ("results", "cli"): "results.cmd_pull borrows the shared argparse options of `pull` (lazy import)",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(TUI.rglob("*.py")):
        parts = list(path.relative_to(TUI).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every module this file imports, ``tui``-relative (``engine.health``) or a
    third-party top name (``textual``), at any depth of the file."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            if node.module:
                found.add(".".join(base + node.module.split(".")))
            else:  # from . import x: x may be a module
                found.update(".".join(base + [a.name]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")
            found.add(".".join(top[1:]) if top[0] == "tui" else top[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")
                found.add(".".join(top[1:]) if top[0] == "tui" else top[0])
    return {f for f in found if f}


def _covers(names, module: str) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


def _layer(module: str) -> int | None:
    best = None
    for i, names in enumerate(LAYERS):
        for n in names:
            if module == n or module.startswith(n + "."):
                if best is None or len(n) > best[1]:
                    best = (i, len(n))
    return None if best is None else best[0]


def _internal(module: str, modules: dict[str, Path]) -> str | None:
    """The tui module an import names (``providers.base``), or None (third-party)."""
    if module in modules:
        return module
    parent = module.rsplit(".", 1)[0] if "." in module else None
    return parent if parent in modules else (module if _layer(module) is not None else None)


def test_no_module_imports_upward():
    modules = _modules()
    problems = []
    for name, path in modules.items():
        if name == "":
            continue
        if _covers(SELF_CONTAINED, name):
            outside = {m for m in _imports(name, path) if _internal(m, modules) and not _covers(SELF_CONTAINED, m)}
            if outside:
                problems.append(f"{name} (self-contained) imports {sorted(outside)}")
            continue
        mine = _layer(name)
        if mine is None:
            problems.append(f"{name}: no layer (give it one in tests/functional/test_layers.py and a row in the doc)")
            continue
        for imported in _imports(name, path):
            target = _internal(imported, modules)
            if target is None or target == name:
                continue
            theirs = _layer(target)
            if theirs is not None and theirs > mine:
                top = (name.split(".")[0], target.split(".")[0])
                if top not in KNOWN_UPWARD:
                    problems.append(f"{name} (layer {mine}) imports {target} (layer {theirs})")
    assert not problems, "\n".join(problems)


def test_the_engine_never_imports_the_ui_and_the_store_never_imports_the_engine():
    modules = _modules()
    for name, path in modules.items():
        imported = {_internal(m, modules) or m for m in _imports(name, path)}
        if _covers(("engine",), name):
            assert not any(_covers(("app", "widgets", "screens", "headless", "cli", "textual"), m)
                           for m in imported), name
        if _covers(("store", "store_pg", "providers"), name):
            assert not any(_covers(("engine", "app", "widgets", "screens", "textual"), m)
                           for m in imported), name


# ---------------------------------------------------------------- the doc's table


def _doc_rows() -> list[tuple[list[str], set[str]]]:
    """(module paths, names it may import) for each row of the "Modules" table."""
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        paths = re.findall(r"`(tui/[^`]*)`", cells[0])
        allowed = {w.strip("`*").removeprefix("tui.") for w in re.split(r"[,\s]+", cells[2]) if w}
        rows.append((paths, allowed))
    return rows


def _row_for(name: str, path: Path, rows) -> set[str] | None:
    rel = path.relative_to(ROOT).as_posix()
    for paths, allowed in rows:  # the file's own row first
        if rel in paths:
            return allowed
    best = None
    for paths, allowed in rows:
        for p in paths:
            if (p.endswith("/") and rel.startswith(p)) or (
                    "<name>" in p and re.fullmatch(re.escape(p).replace("<name>", r"[a-z_]+"), rel)):
                if best is None or len(p) > best[0]:
                    best = (len(p), allowed)
    return None if best is None else best[1]


def test_the_docs_may_import_table_names_every_import():
    modules = _modules()
    rows = _doc_rows()
    assert len(rows) > 20, "the Modules table of docs/architecture.md was not found"
    problems = []
    for name, path in modules.items():
        if name == "" or path.name == "__main__.py":
            continue
        allowed = _row_for(name, path, rows)
        if allowed is None:
            problems.append(f"{path.relative_to(ROOT)}: no row in docs/architecture.md")
            continue
        if "everything" in allowed:
            continue
        package = name.split(".")[0]
        for imported in _imports(name, path):
            target = _internal(imported, modules)
            if target is not None:
                if target == name or _covers((package,), target) and package in ("sim", "providers", "engine"):
                    continue  # within its own package
                if not _covers(allowed, target):
                    problems.append(f"{name} imports {target}: not in its row")
            elif imported == "textual" and "textual" not in allowed:
                problems.append(f"{name} imports textual: not in its row")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- headless without Textual


def test_headless_commands_never_load_textual(tmp_path):
    code = (
        "import sys, os\n"
        "import tui.cli, tui.headless, tui.engine, tui.store, tui.config, tui.stores\n"
        "from tui.cli import main\n"
        "from tui.store import Store\n"
        "with Store(os.environ['DB']) as store:\n"
        "    store.add('evolink', ['t-1'], label='x')\n"
        "code = main(['--db', os.environ['DB'], 'ls'])\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print('EXIT', code, 'TEXTUAL', loaded[:3])\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DB": str(tmp_path / "tasks.db"),
           "TASKTUI_CONFIG": str(tmp_path / "none.toml"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120)
    assert "t-1" in out.stdout and "EXIT 0 TEXTUAL []" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
