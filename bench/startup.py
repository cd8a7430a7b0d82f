"""Start-up figure: `hostsim actions` vs importing the host's own libraries, in fresh processes."""

from __future__ import annotations

import os
import statistics
from typing import Any

from bench.common import HOSTSIM, PYTHON, Bench, Figure, run_timed

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


RUN_TASK = "name: one-step\nsteps:\n  - action: Log Message\n    params: {message: hello}\n"
RUN_BASELINE = [PYTHON, "-c", "import imaplib"]
#: what `hostsim run` cannot do without: the host's libraries (pluggy, attrs) and PyYAML
FLOOR = [PYTHON, "-c", "import attrs, pluggy, yaml"]


def run_figure(bench: Bench, size: dict[str, int], log: Any) -> Figure:
    """`hostsim run` of a one-step task against `python -c "import imaplib"` (issue: start-up)."""
    runs = max(size["startup"], 3)
    log(f"`hostsim run` start-up: {runs} runs each")
    task = bench.private_file("one-step.yaml", RUN_TASK)
    hostsim = [HOSTSIM, "run", str(task)]
    load_only = [PYTHON, "-c", "from hostsim.runtime.host import Host; Host.load()"]
    commands = {"run": hostsim, "base": RUN_BASELINE, "floor": FLOOR, "load": load_only}
    for cmd in commands.values():  # warm the page cache and the byte-code cache
        run_timed(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(run_timed(cmd)[0])
    med = {name: statistics.median(values) for name, values in times.items()}
    base = med["base"]
    return Figure(
        key="run_startup",
        title="`hostsim run` of a one-step task, start to exit",
        value=med["run"],
        unit="s",
        baseline=base,
        baseline_label='python -c "import imaplib"',
        target="ratio <= 1.5",
        limit=1.5,
        how=f"fresh processes, wall time, median of {runs} each (interleaved); the task's step is "
        "Log Message",
        notes=(
            f'python -c "import attrs, pluggy, yaml" alone: {med["floor"]:.3f} s, ratio '
            f"{med['floor'] / base:.2f} (the libraries hostsim and the plugin contract are built "
            "on, and the task file's)",
            f"Host.load() alone (plugins registered, no task): {med['load']:.3f} s, ratio "
            f"{med['load'] / base:.2f}",
        ),
    )
