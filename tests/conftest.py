"""Shared fixtures: every test runs with its own robomail data folder and key."""

from __future__ import annotations

import base64
import os

import pytest

pytest_plugins = ["hostsim.devservers.testing", "mail_fixtures", "pg_support"]


@pytest.fixture(autouse=True)
def robomail_home(tmp_path, monkeypatch):
    """Isolates user state: a fresh data folder and encryption key for each test."""
    home = tmp_path / "robomail-home"
    home.mkdir()
    monkeypatch.setenv("ROBOMAIL_HOME", str(home))
    monkeypatch.setenv("ROBOMAIL_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("HOSTSIM_HOME", str(tmp_path / "hostsim-home"))
    monkeypatch.delenv("HOSTSIM_BLOCK_PLUGINS", raising=False)
    monkeypatch.delenv("HOSTSIM_TRACE", raising=False)
    return home


@pytest.fixture
def fake_browser(monkeypatch, tmp_path):
    """Get Refresh Token's system browser is hostsim's fake browser (it follows the sign-in and
    the redirect, as a person would); returns the file it logs the pages it saw to."""
    import sys
    import webbrowser

    log = tmp_path / "browser.log"
    monkeypatch.setenv("BROWSER", f"{sys.executable} -m hostsim.devservers.fakebrowser %s")
    monkeypatch.setenv("FAKEBROWSER_LOG", str(log))
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    monkeypatch.setattr(webbrowser, "_browsers", {})
    return log


@pytest.fixture
def host(robomail_home):
    """A host loaded through the real entry points, with this test's own data folders."""
    from hostsim.runtime.host import Host

    return Host.load()


def pytest_collection_modifyitems(items):
    """Every test that uses the private Dovecot carries the ``sandbox`` marker, so
    ``-m "not sandbox"`` runs exactly the tests that need no mail server."""
    for item in items:
        if "sandbox" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.sandbox)
