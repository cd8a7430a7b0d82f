"""``python -m bench [--quick | --size tiny] [--only NAME ...]``: every figure of issue 6.

Starts the fake OAuth provider and a private Dovecot (loopback only), seeds the mailboxes, and
prints each figure (the plugin's number, the baseline measured in the same run, the ratio and the
target), then one line per target: met / NOT met. Both servers are stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import SIZES, Bench, Figure, figure_line, verdict_line

GROUPS = (
    "imap", "loops", "download", "gmail", "memory", "pop3", "smtp", "oauth", "parse", "startup",
    "fleet", "trigger",
)


def _runners() -> dict[str, Callable[[Bench, dict[str, int], Any], list[Figure]]]:
    from bench import (
        fleet_figures,
        imap_figures,
        loop_figures,
        oauth_figures,
        other_figures,
        startup,
        trigger_figures,
    )

    return {
        "imap": imap_figures.loop_figures,
        "loops": loop_figures.loop_figures,
        "download": lambda b, s, log: [loop_figures.download_figure(b, s, log)],
        "gmail": loop_figures.gmail_figures,
        "memory": lambda b, s, log: [imap_figures.memory_figure(b, s, log)],
        "pop3": lambda b, s, log: [other_figures.pop3_figure(b, s, log)],
        "smtp": lambda b, s, log: [other_figures.smtp_figure(b, s, log)],
        "oauth": oauth_figures.oauth_figures,
        "parse": lambda b, s, log: [other_figures.parse_figure(b, s, log)],
        "startup": lambda b, s, log: [
            startup.startup_figure(s, log),
            startup.run_figure(b, s, log),
        ],
        "fleet": fleet_figures.fleet_figures,
        "trigger": trigger_figures.trigger_figures,
    }


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    parser.add_argument("--size", choices=sorted(SIZES), help="full (default), quick or tiny")
    parser.add_argument(
        "--only", action="append", choices=GROUPS, help="run only these groups (repeatable)"
    )
    args = parser.parse_args(argv)
    mode = args.size or ("quick" if args.quick else "full")
    size = SIZES[mode]
    groups = args.only or list(GROUPS)

    def log(text: str) -> None:
        print(f"  .. {text}", file=sys.stderr, flush=True)

    print(f"robomail benchmarks ({mode} size) on {machine()}", flush=True)
    started = time.perf_counter()
    figures: list[Figure] = []
    failures: list[str] = []
    runners = _runners()
    with Bench() as bench:
        for group in groups:
            log(f"{group} ...")
            try:
                new = runners[group](bench, size, log)
            except Exception as exc:  # noqa: BLE001 - one broken figure must not hide the rest
                failures.append(f"{group}: {type(exc).__name__}: {exc}")
                print(f"FAILED to measure {group}: {type(exc).__name__}: {exc}", flush=True)
                continue
            for figure in new:
                figures.append(figure)
                print(figure_line(figure), flush=True)
                if figure.how:
                    print(f"    measured: {figure.how}", flush=True)
                for note in figure.notes:
                    print(f"    note: {note}", flush=True)
    print(f"\ntargets ({time.perf_counter() - started:.0f} s in all):")
    for figure in figures:
        line = verdict_line(figure)
        if line:
            print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
