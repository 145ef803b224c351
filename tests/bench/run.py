"""`make bench`: run every benchmark in turn; each writes its own section of docs/benchmarks.md."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

from rich.console import Console

# Cheap to expensive; a module that is not there yet is skipped with a note.
BENCHMARKS = (
    "tests.bench.ingest",
    "tests.bench.ml_quality",
    "tests.bench.retrain",
    "tests.bench.api_load",
    "tests.bench.soak",
)

console = Console()


def main() -> int:
    failures = []
    for module in BENCHMARKS:
        if importlib.util.find_spec(module) is None:
            console.print(f"[yellow]{module}: not present, skipped[/]")
            continue
        console.rule(module)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", module])
        console.print(f"{module}: exit {code} after {time.perf_counter() - started:.0f}s")
        if code != 0:
            failures.append(module)
    if failures:
        console.print(f"[red]failed: {', '.join(failures)}[/]")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
