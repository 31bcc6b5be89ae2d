"""Where the packaged data files are.

The Textual stylesheets live in the top-level ``styles/`` folder of the
source tree and are installed as the package ``tui.styles``.  Running from a
source checkout (``python -m tui``) finds the folder; an installed wheel finds
the package.
"""

from __future__ import annotations

from pathlib import Path


def styles_dir() -> Path:
    try:
        import tui.styles as styles  # installed wheel, or editable install

        return Path(styles.__file__).parent
    except ImportError:
        return Path(__file__).resolve().parent.parent / "styles"


def stylesheet(name: str) -> Path:
    """Absolute path of ``styles/<name>`` (e.g. ``stylesheet("app.tcss")``)."""
    return styles_dir() / name
