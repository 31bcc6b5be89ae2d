"""tasktui benchmarks: each measures tasktui against a baseline run on the same machine in the same run.

Run all: ``python -m bench``; a quick subset on small sizes: ``python -m bench --quick``.
"""
