"""The `hostsim` console script: says which extra to install when hostsim's libraries are missing.

``pip install robomail`` brings the plugin only; hostsim needs click and PyYAML
(``robomail[host]``). Without them a traceback ending in ``No module named 'click'`` would be all
the user sees.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec


def main() -> None:
    if find_spec("click") is None or find_spec("yaml") is None:
        sys.exit("hostsim needs click and PyYAML: pip install 'robomail[host]'")
    if sys.argv[1:2] == ["run"]:  # the common case, without click (hostsim/cli/quickrun.py)
        from hostsim.cli.quickrun import main as quick_run

        code = quick_run(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    from hostsim.cli.main import main as cli

    cli()
