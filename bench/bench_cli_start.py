"""Start-up time of the command line: what a person waits for before ``--help`` answers.

    .venv/bin/python -m bench.bench_cli_start [--runs 5]

Starts ``python -m core`` afresh for each command (a new interpreter, as from a shell) and
reports the median wall-clock time of ``--runs`` starts against the target of issue 20:
≤ 0.5 s, which holds only while registering the commands imports no heavy module (pandas,
NumPy, SQLAlchemy, the settings). ``python -X importtime -m core --help`` shows what a slow
start loads. Exits 1 if a command misses its target.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import median, table

TARGET_S = 0.5
COMMANDS = (
    ["--help"],
    ["users", "list", "--help"],
    ["models", "list", "--help"],
)


def start_seconds(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "core", *argv], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    start_seconds(["--help"])  # the first start fills the byte-code caches
    rows = []
    for argv in COMMANDS:
        seconds = median([start_seconds(argv) for _ in range(args.runs)])
        verdict = "pass" if seconds <= TARGET_S else "FAIL"
        rows.append(
            [f"python -m core {' '.join(argv)}", f"{seconds:.3f} s", f"≤ {TARGET_S} s", verdict]
        )
    print(table(rows, ["command", f"median of {args.runs} starts", "target", "result"]))
    return 0 if all(r[-1] == "pass" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
