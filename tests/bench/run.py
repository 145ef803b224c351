"""`make bench`: run every benchmark in turn; each writes its own section of docs/benchmarks.md."""

from __future__ import annotations

import importlib.util
import os
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
    # A wider, fresh fuzz of the OpenAPI schema than `make test` (which replays the same examples).
    console.rule("schema fuzz (random examples)")
    fuzz_env = {**os.environ, "MOVIEREC_FUZZ_SEED": "random", "MOVIEREC_FUZZ_EXAMPLES": "200"}
    command = [sys.executable, "-m", "pytest", "-q", "tests/api/test_openapi_contract.py"]
    if subprocess.call(command, env=fuzz_env) != 0:
        failures.append("schema fuzz")
    if failures:
        console.print(f"[red]failed: {', '.join(failures)}[/]")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
