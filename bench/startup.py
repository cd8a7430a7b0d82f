"""Start-up figure: `hostsim actions` vs importing the host's own libraries, in fresh processes."""

from __future__ import annotations

import os
import statistics
from typing import Any

from bench.common import HOSTSIM, PYTHON, Figure, run_timed

BASELINE = [PYTHON, "-c", "import click, pluggy, attrs, yaml"]


def startup_figure(size: dict[str, int], log: Any) -> Figure:
    runs = size["startup"]
    log(f"start-up: {runs} runs each")
    run_timed([HOSTSIM, "actions"])  # warm the page cache and __pycache__
    run_timed(BASELINE)
    # the host alone (robomail blocked): what is left when the plugin costs nothing to load
    alone_env = {**os.environ, "HOSTSIM_BLOCK_PLUGINS": "robomail"}
    plugin, base, alone = [], [], []
    for _ in range(runs):
        plugin.append(run_timed([HOSTSIM, "actions"])[0])
        base.append(run_timed(BASELINE)[0])
        alone.append(run_timed([HOSTSIM, "actions"], env=alone_env)[0])
    host_alone, baseline = statistics.median(alone), statistics.median(base)
    return Figure(
        key="startup",
        title="`hostsim actions` start-up",
        value=statistics.median(plugin),
        unit="s",
        baseline=baseline,
        baseline_label='python -c "import click, pluggy, attrs, yaml"',
        target="ratio <= 1.5",
        limit=1.5,
        how=f"fresh processes, wall time, median of {runs} each (interleaved)",
        notes=(
            f"the host alone (HOSTSIM_BLOCK_PLUGINS=robomail hostsim actions): "
            f"{host_alone:.3f} s, ratio {host_alone / baseline:.2f}; robomail's share is "
            f"{statistics.median(plugin) - host_alone:.3f} s",
        ),
    )
