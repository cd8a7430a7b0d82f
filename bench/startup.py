"""Start-up figure: `hostsim actions` vs importing the host's own libraries, in fresh processes."""

from __future__ import annotations

import statistics
from typing import Any

from bench.common import HOSTSIM, PYTHON, Figure, run_timed

BASELINE = [PYTHON, "-c", "import click, pluggy, attrs, yaml"]


def startup_figure(size: dict[str, int], log: Any) -> Figure:
    runs = size["startup"]
    log(f"start-up: {runs} runs each")
    run_timed([HOSTSIM, "actions"])  # warm the page cache and __pycache__
    run_timed(BASELINE)
    plugin, base = [], []
    for _ in range(runs):
        plugin.append(run_timed([HOSTSIM, "actions"])[0])
        base.append(run_timed(BASELINE)[0])
    return Figure(
        key="startup",
        title="`hostsim actions` start-up",
        value=statistics.median(plugin),
        unit="s",
        baseline=statistics.median(base),
        baseline_label='python -c "import click, pluggy, attrs, yaml"',
        target="ratio <= 1.5",
        limit=1.5,
        how=f"fresh processes, wall time, median of {runs} each (interleaved)",
    )
