"""The engine package's arrows run one way: engine -> worker -> schedule and
health, health -> schedule, never back; each constant lives with the code that
uses it (no module takes a name from a module above it)."""

from __future__ import annotations

import ast
from pathlib import Path

import tui.engine

PACKAGE = Path(tui.engine.__file__).parent
# module -> the package's modules it may import from
ALLOWED = {
    "schedule": set(),
    "health": {"schedule"},
    "worker": {"schedule", "health"},
    "engine": {"worker", "health"},
    "__init__": {"engine", "worker", "health", "schedule"},
}


def _imports(path: Path) -> dict[str, set[str]]:
    """package module -> the names this file imports from it."""
    out: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out.setdefault(node.module or "__init__", set()).update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("tui.engine"):
            out.setdefault(node.module.split(".")[-1], set()).update(a.name for a in node.names)
    return out


def test_the_package_imports_only_downward():
    assert {p.stem for p in PACKAGE.glob("*.py")} == set(ALLOWED)
    for name, allowed in ALLOWED.items():
        used = set(_imports(PACKAGE / f"{name}.py"))
        assert used <= allowed, f"{name}.py imports from {sorted(used - allowed)}"


def test_the_engine_does_not_reach_up_to_the_ui_or_the_commands():
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module not in ("app", "headless", "cli", "widgets", "demo", "push"), (path.name, node.module)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.startswith("textual") for n in names), path.name


def test_what_other_modules_import_from_tui_engine_is_still_there():
    for name in ("Engine", "ProviderStatus", "ProviderHealth", "read_health", "quota", "Schedule", "plan",
                 "observe", "predict_end", "priority", "backoff", "Durations", "DEGRADED", "OPTIONAL_RETRY",
                 "PROVIDER_STATES", "MAX_KINDS", "PRIOR_MIN", "PRIOR_SIZE", "QUIET_CAP"):
        assert hasattr(tui.engine, name), name
