"""tasktui: one terminal screen for the asynchronous jobs of AI media APIs."""

__version__ = "0.1.0"
