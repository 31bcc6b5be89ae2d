"""Textual CSS for tasktui. Installed as the package ``tui.styles``."""
