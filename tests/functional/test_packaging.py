"""The wheel carries what a non-editable install needs: the stylesheets and the entry point."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_styles_and_entry_point(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("tasktui-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    sheets = {Path(n).name for n in names if n.startswith("tui/styles/") and n.endswith(".tcss")}
    source = {p.name for p in (ROOT / "styles").glob("*.tcss")}
    assert source, "styles/ holds no stylesheet"
    assert sheets == source
    for module in ("tui/cli.py", "tui/providers/base.py", "tui/sim/__init__.py"):
        assert module in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "tasktui = tui.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_version_runs_without_textual():
    code = "import sys; from tui.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\nprint('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().endswith("False")
    assert "tasktui 0.1.0" in out.stdout
