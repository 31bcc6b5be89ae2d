"""Where the config and the task database live.

Kept apart from ``tui.config`` so that commands that only need a path (``ls``,
``export``) start without importing pydantic.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "tasktui"


def config_path(arg: str | os.PathLike | None = None) -> Path:
    """``arg``, else ``$TASKTUI_CONFIG``, else ``<user config dir>/tasktui/config.toml``."""
    return _config_source(arg)[0]


def db_path(arg: str | os.PathLike | None = None) -> Path:
    """``arg``, else ``$TASKTUI_DB``, else ``<user data dir>/tasktui/tasks.db``."""
    if arg:
        return Path(arg).expanduser()
    if os.environ.get("TASKTUI_DB"):
        return Path(os.environ["TASKTUI_DB"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME)) / "tasks.db"


def _config_source(arg: str | os.PathLike | None) -> tuple[Path, str]:
    if arg:
        return Path(arg).expanduser(), "--config"
    if os.environ.get("TASKTUI_CONFIG"):
        return Path(os.environ["TASKTUI_CONFIG"]).expanduser(), "$TASKTUI_CONFIG"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml", "the default location"
