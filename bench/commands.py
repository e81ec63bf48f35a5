"""How long the `dca` command takes, as a person types it: the quick commands and a big calendar.

    python3 -m uv run python bench/commands.py [--repeat N]

Each command is a new process (`.venv/bin/dca ...`, wall-clock time around
`subprocess.run`), in a throwaway data directory and cache directory, so nothing of yours
is read or written. Before timing, one `dca plan` and one `dca status` write the example
plan and fill the trading-day cache (that first start is reported on its own); the
targets apply to the median of the runs after it:

(c) `dca --help`, `dca plan`, `dca status` on the example plan   -- each < 0.5 s
(d) `dca calendar --json` over 2027 for 1,000 Daily rows, minus the same for 10 rows
    -- < 1 s (the 1,000-row output is checked: valid JSON, 251,000 items)

The same quick commands through `uv run dca` are reported too, without a target
(`uv run` adds its own start-up). Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUICK_TARGET_S = 0.5
CALENDAR_EXTRA_TARGET_S = 1.0
YEAR = ["--start", "2027-01-01", "--end", "2027-12-31"]
HEADER = "Status,Stock Symbol,Amount (USD),Frequency,Log,ID\n"


def daily_plan(rows: int) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return HEADER + "".join(
        f"Active,X{letters[i % 26]}{letters[i // 26 % 26]},100,Daily,,bench-{i:04d}\n" for i in range(rows)
    )


def timed_run(argv: list[str], env: dict, out=subprocess.DEVNULL) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return elapsed


def median_of(argv: list[str], env: dict, repeat: int) -> tuple[float, list[float]]:
    times = [timed_run(argv, env) for _ in range(repeat)]
    return statistics.median(times), times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per command (default 7)")
    args = parser.parse_args(argv)

    dca = Path(sys.executable).parent / "dca"
    if not dca.exists():
        print(f"no {dca}: run this with the project's environment (python3 -m uv run python ...)", file=sys.stderr)
        return 2
    uv = shutil.which("uv")
    missed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dca-bench-commands-") as tmp:
        tmp_path = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DCA_")}
        env.update(DCA_HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"))
        (tmp_path / "small.csv").write_text(daily_plan(10))
        (tmp_path / "big.csv").write_text(daily_plan(1000))

        first_plan = timed_run([str(dca), "plan"], env)  # writes the example plan
        first_status = timed_run([str(dca), "status"], env)  # builds the trading-day cache
        print(f"Python {sys.version.split()[0]}, {args.repeat} runs per command, in {tmp}")
        print(f"first start: `dca plan` {ms(first_plan)} (writes the example plan), then `dca status` "
              f"{ms(first_status)} (builds the trading-day cache from exchange_calendars)\n")
        print(f"{'command':<52} {'median':>8} {'target':>9}  result   all runs (ms)")

        def report(label: str, median: float, times: list[float], target: float | None) -> None:
            verdict = "-" if target is None else ("ok" if median < target else "MISSED")
            if verdict == "MISSED":
                missed.append(label)
            shown = "-" if target is None else f"< {ms(target)}"
            print(f"{label:<52} {ms(median):>8} {shown:>9}  {verdict:<7}  "
                  + ", ".join(f"{t * 1000:.0f}" for t in times))

        for command in (["--help"], ["plan"], ["status"]):
            median, times = median_of([str(dca), *command], env, args.repeat)
            report(f"(c) .venv/bin/dca {' '.join(command)}", median, times, QUICK_TARGET_S)
        if uv:
            for command in (["--help"], ["plan"], ["status"]):
                median, times = median_of([uv, "run", "--quiet", "dca", *command], env, args.repeat)
                report(f"    uv run dca {' '.join(command)}", median, times, None)
        else:
            print("    (no `uv` executable on PATH: `uv run` timings left out)")

        db = str(tmp_path / "calendar.sqlite3")
        small, small_times = median_of([str(dca), "calendar", "--plan", str(tmp_path / "small.csv"), "--db", db,
                                        *YEAR, "--json"], env, args.repeat)
        big_argv = [str(dca), "calendar", "--plan", str(tmp_path / "big.csv"), "--db", db, *YEAR, "--json"]
        big, big_times = median_of(big_argv, env, args.repeat)
        report("    calendar --json, 10 Daily rows over 2027", small, small_times, None)
        report("    calendar --json, 1,000 Daily rows over 2027", big, big_times, None)
        report("(d) the 1,000 rows' extra time", big - small, [b - s for b, s in zip(big_times, small_times)],
               CALENDAR_EXTRA_TARGET_S)
        with open(tmp_path / "big.json", "w") as out:
            timed_run(big_argv, env, out)
        items = json.loads((tmp_path / "big.json").read_text())
        size = (tmp_path / "big.json").stat().st_size
        print(f"    (the 1,000-row output: {len(items):,} items, {size / 1e6:.1f} MB of valid JSON)")
        if len(items) != 1000 * 251:
            missed.append("(d) expected 251,000 items")

    if missed:
        print("\nMISSED: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
