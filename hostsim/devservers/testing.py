"""pytest plugin: a session-wide fake OAuth provider and Dovecot sandbox for the test suite.

Load it with ``pytest_plugins = ["hostsim.devservers.testing"]`` in the root conftest.
Both servers start on
first use and stop at the end of the session; the provider's switches are reset before each test
so one test's ``fail_next`` or ``introspection_down`` cannot leak into the next.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from hostsim.devservers.fakeprovider import FakeProvider
from hostsim.devservers.sandbox import Sandbox

_session_provider: FakeProvider | None = None


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeProvider]:
    """A running FakeProvider shared by the whole session (reset before each test)."""
    global _session_provider
    provider = FakeProvider().start()
    _session_provider = provider
    try:
        yield provider
    finally:
        _session_provider = None
        provider.stop()


@pytest.fixture(autouse=True)
def _reset_fake_provider() -> None:
    """Put the session provider's switches back to defaults (cheap: no I/O)."""
    if _session_provider is not None:
        _session_provider.reset()


@pytest.fixture(scope="session")
def sandbox(fake_provider: FakeProvider) -> Iterator[Sandbox]:
    """A running private Dovecot that checks OAuth tokens against ``fake_provider``."""
    box = Sandbox(fake_provider)
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def oauth_client(fake_provider: FakeProvider) -> tuple[str, str]:
    """A freshly registered confidential client: ``(client_id, client_secret)``."""
    client_id = "client-" + secrets.token_hex(6)
    client_secret = secrets.token_urlsafe(24)
    fake_provider.register_client(client_id, client_secret)
    return client_id, client_secret


@pytest.fixture
def public_oauth_client(fake_provider: FakeProvider) -> str:
    """A freshly registered public client (it must not send a secret): its client_id."""
    client_id = "public-" + secrets.token_hex(6)
    fake_provider.register_client(client_id, None)
    return client_id
