"""python -m bench [--quick] [--only NAME ...] [--markdown FILE]"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from .common import machine, table

SUITES = {
    "startup": "bench.startup",
    "ui": "bench.ui",
    "thrift": "bench.thrift",
    "throughput": "bench.throughput",
    "headless": "bench.headless",
    "results": "bench.results",
    "push": "bench.push",
    "scale": "bench.scale",
    "team": "bench.team",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    parser.add_argument("--only", nargs="+", choices=sorted(SUITES), help="run only these suites")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    args = parser.parse_args(argv)
    results = []
    t0 = time.perf_counter()
    for name in args.only or SUITES:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(SUITES[name])
        results.extend(module.run(quick=args.quick))
    text = (f"machine: {machine()}\nmode: {'quick' if args.quick else 'full'}, "
            f"{time.perf_counter() - t0:.0f} s\n\n{table(results)}\n")
    for r in results:
        if r.notes:
            text += f"\n- {r.bench} / {r.case}: {r.notes}"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
