"""The installed plugins of an entry-point group, remembered between starts (as stevedore does).

Finding entry points means importing ``importlib.metadata`` (and with it email, zipfile, csv ...)
and reading every installed distribution: about a fifth of `hostsim actions` start-up. The list
found is kept in a small JSON file, keyed on the interpreter, ``sys.path`` and the
distribution metadata in its folders. Installing, upgrading or removing a distribution adds,
rewrites or removes a ``*.dist-info`` folder there, so the next start scans again. A cached
entry whose module no longer imports also makes the host scan again.
``HOSTSIM_PLUGIN_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import binascii
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import attrs

CACHE_ENV = "HOSTSIM_PLUGIN_CACHE"


@attrs.frozen
class Found:
    """One entry point: its name, ``module:attribute`` and the distribution that declares it."""

    name: str
    value: str
    dist: str
    version: str

    def load(self) -> Any:
        module, _, attribute = self.value.partition(":")
        obj: Any = importlib.import_module(module.strip())
        for part in filter(None, attribute.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def scan(group: str) -> list[Found]:
    """Every entry point of ``group`` in the installed distributions (the slow, certain way)."""
    from importlib import metadata

    found: list[Found] = []
    seen: set[str] = set()
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == group and ep.name not in seen:  # the first on sys.path wins
                seen.add(ep.name)
                found.append(Found(ep.name, ep.value, dist.metadata["Name"], dist.version))
    return found


_METADATA_SUFFIXES = (".dist-info", ".egg-info", ".egg-link", ".pth")


def _key(group: str) -> list[Any]:
    """What the list depends on: the interpreter, sys.path and the distributions in each of its
    folders (their metadata entries and when each was written). Not the folders' own times:
    Python writing a ``__pycache__`` there changes those and says nothing about plugins."""
    folders: list[list[Any]] = []
    for entry in sys.path:
        dists: list[Any]
        try:
            with os.scandir(entry or ".") as listing:
                dists = sorted(
                    [item.name, item.stat().st_mtime_ns]
                    for item in listing
                    if item.name.endswith(_METADATA_SUFFIXES)
                )
        except OSError:  # missing, a file (a zip) or unreadable: its time, if any, is the key
            dists = [_mtime(entry)]
        folders.append([entry, dists])
    return [sys.executable, sys.version, group, folders]


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def cache_enabled() -> bool:
    return os.environ.get(CACHE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def cached_scan(group: str, cache_dir: Path | None) -> tuple[list[Found], bool]:
    """The entry points of ``group`` and whether they came from the cache in ``cache_dir``."""
    if cache_dir is None or not cache_enabled():
        return scan(group), False
    path = _cache_file(group, cache_dir)
    key = _key(group)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["key"] == key:
            return [Found(**item) for item in data["entry_points"]], True
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, or damaged: scan and write it again
    found = scan(group)
    _write(path, {"key": key, "entry_points": [attrs.asdict(f) for f in found]})
    return found, False


def _cache_file(group: str, cache_dir: Path) -> Path:
    """One file per interpreter and sys.path: `hostsim` and `python -c` do not take turns."""
    where = binascii.crc32(json.dumps([sys.executable, sys.path]).encode())
    return cache_dir / f"entry-points-{group}-{where:08x}.json"


def forget(group: str, cache_dir: Path | None) -> None:
    """Drops the remembered list (a cached entry point no longer loads)."""
    if cache_dir is not None:
        _cache_file(group, cache_dir).unlink(missing_ok=True)


def _write(path: Path, data: dict[str, Any]) -> None:
    """Writes atomically; a cache that cannot be written is only a slower next start."""
    from robomail_plugin.private_files import write_private  # only when the cache is written

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(data), 0o666, fsync=False)  # 0666 less the umask
    except OSError:
        pass
