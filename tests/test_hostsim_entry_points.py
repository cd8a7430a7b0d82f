"""hostsim remembers the installed plugins between starts, and notices when that changes.

A fake distribution (a ``.dist-info`` folder with ``entry_points.txt`` beside its module) is put
on ``sys.path``; installing, removing or breaking it must show at the next start, as it would
for a real ``pip install``/``uninstall``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from hostsim.runtime import entry_points
from hostsim.runtime.plugins import make_plugin_manager
from robomail_plugin.hookspecs import ENTRY_POINT_GROUP

PLUGIN_MODULE = """
from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import ActionSpec


class Plugin:
    @hookimpl
    def robomail_register_actions(self):
        return [ActionSpec(id="fakeplug.hello", title="Fake Hello", category="Fake",
                           run=lambda ctx, params: None)]


plugin = Plugin()
"""


def _install(site, *, module="fakeplug_mod", version="1.0"):
    """A minimal installed distribution 'fakeplug' whose entry point names ``module:plugin``."""
    (site / f"{module}.py").write_text(PLUGIN_MODULE, encoding="utf-8")
    info = site / f"fakeplug-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: fakeplug\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nfakeplug = {module}:plugin\n", encoding="utf-8"
    )
    return info


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [m for m in sys.modules if m.startswith("fakeplug_mod")]:
        del sys.modules[name]


def _cache_file(cache_dir):
    (path,) = list(cache_dir.glob(f"entry-points-{ENTRY_POINT_GROUP}-*.json")) or [
        entry_points._cache_file(ENTRY_POINT_GROUP, cache_dir)
    ]
    return path


def _load(cache_dir):
    return make_plugin_manager(cache_dir=cache_dir)


def test_second_start_reads_the_list_from_the_cache(site, tmp_path, monkeypatch):
    _install(site)
    cache = tmp_path / "cache"
    pm = _load(cache)
    assert pm.get_plugin("fakeplug") is not None and pm.get_plugin("robomail") is not None
    assert pm.plugin_dists["fakeplug"] == "fakeplug 1.0"

    def no_scan(group):
        raise AssertionError("scanned although nothing was installed or removed")

    monkeypatch.setattr(entry_points, "scan", no_scan)
    again = _load(cache)
    assert again.get_plugin("fakeplug") is not None and again.get_plugin("robomail") is not None
    assert again.plugin_dists == pm.plugin_dists


def test_installing_and_removing_a_plugin_shows_at_the_next_start(site, tmp_path):
    cache = tmp_path / "cache"
    assert _load(cache).get_plugin("fakeplug") is None
    info = _install(site)
    assert _load(cache).get_plugin("fakeplug") is not None
    for path in info.iterdir():
        path.unlink()
    info.rmdir()
    assert _load(cache).get_plugin("fakeplug") is None


def test_a_remembered_plugin_that_no_longer_loads_makes_it_scan_again(site, tmp_path):
    """The distribution changed in place (its folder's time kept, as a hand edit does): the
    remembered module is gone, the scan finds where the entry point points now."""
    cache = tmp_path / "cache"
    info = _install(site)
    assert _load(cache).get_plugin("fakeplug") is not None
    stamp = site.stat()
    (site / "fakeplug_mod.py").rename(site / "fakeplug_mod2.py")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nfakeplug = fakeplug_mod2:plugin\n", encoding="utf-8"
    )
    sys.modules.pop("fakeplug_mod", None)
    os.utime(site, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    importlib.invalidate_caches()  # a new process would list the folder afresh
    pm = _load(cache)
    assert type(pm.get_plugin("fakeplug")).__module__ == "fakeplug_mod2"
    remembered = json.loads(_cache_file(cache).read_text(encoding="utf-8"))
    assert "fakeplug_mod2:plugin" in [ep["value"] for ep in remembered["entry_points"]]


def test_blocked_plugins_stay_out_with_the_cache(site, tmp_path, monkeypatch):
    _install(site)
    cache = tmp_path / "cache"
    _load(cache)
    monkeypatch.setenv("HOSTSIM_BLOCK_PLUGINS", "fakeplug")
    pm = _load(cache)
    assert pm.get_plugin("fakeplug") is None and pm.is_blocked("fakeplug")


@pytest.mark.parametrize("damage", ["", "not json", '{"key": 1}', '{"entry_points": []}'])
def test_a_damaged_cache_is_written_again(site, tmp_path, damage):
    _install(site)
    cache = tmp_path / "cache"
    cache.mkdir()
    path = _cache_file(cache)
    path.write_text(damage, encoding="utf-8")
    assert _load(cache).get_plugin("fakeplug") is not None
    names = [ep["name"] for ep in json.loads(path.read_text(encoding="utf-8"))["entry_points"]]
    assert {"fakeplug", "robomail"} <= set(names)


def test_the_cache_can_be_turned_off(site, tmp_path, monkeypatch):
    _install(site)
    cache = tmp_path / "cache"
    monkeypatch.setenv("HOSTSIM_PLUGIN_CACHE", "0")
    assert _load(cache).get_plugin("fakeplug") is not None
    assert not cache.exists()


def test_a_warm_start_does_not_import_importlib_metadata(tmp_path):
    """The point of the cache: a fresh interpreter loads robomail without scanning."""
    probe = textwrap.dedent(
        """
        import json, sys
        from hostsim.runtime.host import Host
        host = Host.load()
        print(json.dumps({"metadata": "importlib.metadata" in sys.modules,
                          "actions": len(host.registry.actions)}))
        """
    )
    env_home = {"HOSTSIM_HOME": str(tmp_path / "home"), "PYTHONDONTWRITEBYTECODE": "1"}
    env = {**os.environ, **env_home}
    env.pop("HOSTSIM_PLUGIN_CACHE", None)
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                check=True, timeout=60,
            ).stdout
        )
        for _ in range(2)
    ]
    assert runs[0]["metadata"] is True  # the first start scans
    assert runs[1] == {"metadata": False, "actions": runs[0]["actions"]}
    assert runs[0]["actions"] > 20
