"""Fleet figures: 8 host processes sharing one PostgreSQL store, refresh tokens rotating.

Each host is a process with its own connections and token service (its own memory cache), asking
for access tokens for 4 records, paced, with 2 s access tokens and a provider that rotates the
refresh token on every refresh and keeps the books of each rotation chain (fleet_provider.py).
Then the same with a refreshing host SIGKILLed at random 20 times (a new host takes its place),
and the cost of reading a record against the embedded store in the same run. The PostgreSQL
server is a private one on 127.0.0.1, stopped by its PID at the end.
"""

from __future__ import annotations

import math
import multiprocessing
import random
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import Bench, Figure
from bench.fleet_provider import RotatingProvider

HOSTS = 8
RECORDS = 4
LIFETIME_S = 2.0
EARLY_S = 0.25  # a host refreshes this long before its token expires
PACE_S = 0.01  # between two rounds of asks, so the run spans several token lifetimes
IDLE, ASKING, ANSWERED = 0, 1, 2


def _watched_endpoint(state: Any, slot: int) -> Any:
    """The token endpoint as a host uses it, telling the parent when a refresh is in flight:
    ASKING (request sent), ANSWERED (new token received, its commit under way)."""
    from robomail_plugin.credentials.tokens import TokenEndpoint

    class Watched(TokenEndpoint):
        count = 0

        def refresh(self, record: Any, *, deadline: Any = None) -> Any:
            state[slot] = ASKING
            result = super().refresh(record, deadline=deadline)
            state[slot] = ANSWERED
            self.count += 1
            return result

    return Watched(timeout=10.0, retry_delays=(0.05, 0.2))


def host_main(slot: int, url: str, home: str, names: list[str], iterations: int | None,
              state: Any, ready: Any, go: Any, stop: Any, out: Any) -> None:
    """One host: asks for each record's access token ``iterations`` times (or until ``stop``)."""
    from robomail_plugin.credentials.pg_store import PostgresCredentialStore
    from robomail_plugin.credentials.tokens import TokenService

    store = PostgresCredentialStore(url, Path(home))
    endpoint = _watched_endpoint(state, slot)
    service = TokenService(lambda: store, lock_dir=Path(home) / "locks", endpoint=endpoint,
                           early_refresh=EARLY_S)
    store.names()  # connected and the schema checked before the start
    ready.put(slot)
    go.wait()
    errors: list[str] = []
    asks = 0
    done = 0
    while (iterations is None or done < iterations) and not stop.is_set():
        for name in names:
            try:
                service.get_access_token(name)
            except Exception as exc:  # counted: the figure is the number of failures
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
            finally:
                state[slot] = IDLE
            asks += 1
        done += 1
        time.sleep(PACE_S)
    out.put({"slot": slot, "refreshes": endpoint.count, "asks": asks, "errors": errors})
    store.close()


class _Fleet:
    """A database seeded with records on ``provider``, and the host processes around it."""

    def __init__(self, pg: Any, provider: RotatingProvider, home: Path, db: str) -> None:
        from robomail_plugin.credentials.pg_store import PostgresCredentialStore
        from robomail_plugin.credentials.records import OAuthRecord

        self.url = pg.create_database(db)
        self.home = home
        self.provider = provider
        self.store = PostgresCredentialStore(self.url, home)
        self.names = [f"fleet-{i}" for i in range(RECORDS)]
        for name in self.names:
            self.store.add(OAuthRecord(
                record_name=name, client_account=f"{name}@example.test", client_id="fleet",
                client_secret="fleet-secret", refresh_token=provider.new_chain(name),
                authorization_endpoint="http://127.0.0.1:9/authorize",
                token_endpoint=provider.token_url, scope="mail offline_access",
            ))
        self.ctx = multiprocessing.get_context("spawn")
        self.state = self.ctx.Array("i", HOSTS, lock=False)
        self.ready, self.out = self.ctx.Queue(), self.ctx.Queue()
        self.go, self.stop = self.ctx.Event(), self.ctx.Event()
        self.procs: dict[int, Any] = {}

    def spawn(self, slot: int, iterations: int | None) -> None:
        proc = self.ctx.Process(
            target=host_main,
            args=(slot, self.url, str(self.home), self.names, iterations, self.state,
                  self.ready, self.go, self.stop, self.out),
            daemon=True,
        )
        proc.start()
        self.procs[slot] = proc

    def wait_ready(self, count: int) -> None:
        """Waits for ``count`` hosts to be connected; a host that died says so at once."""
        import queue

        deadline = time.monotonic() + 120
        while count:
            try:
                self.ready.get(timeout=0.5)
                count -= 1
            except queue.Empty:
                dead = [p.exitcode for p in self.procs.values() if p.exitcode is not None]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"a fleet host did not start (exit codes {dead})") from None

    def start(self, iterations: int | None) -> float:
        for slot in range(HOSTS):
            self.spawn(slot, iterations)
        self.wait_ready(HOSTS)
        started = time.perf_counter()
        self.go.set()
        return started

    def results(self, count: int) -> list[dict[str, Any]]:
        found = [self.out.get(timeout=600) for _ in range(count)]
        for proc in self.procs.values():
            proc.join(timeout=30)
        return found

    def lost(self) -> int:
        stored = {n: self.store.get(n).refresh_token for n in self.names}
        return self.provider.lost + self.provider.stored_lost(stored)

    def close(self) -> None:
        self.stop.set()
        for proc in self.procs.values():
            if proc.is_alive():
                proc.kill()
                proc.join(10)
        self.store.close()


def _steady_run(pg: Any, home: Path, iterations: int, log: Any) -> list[Figure]:
    provider = RotatingProvider(LIFETIME_S).start()
    fleet = _Fleet(pg, provider, home, "fleet")
    try:
        log(f"fleet: {HOSTS} hosts x {RECORDS} records x {iterations} asks")
        started = fleet.start(iterations)
        found = fleet.results(HOSTS)
        took = time.perf_counter() - started
        lost = fleet.lost()
    finally:
        fleet.close()
        provider.stop()
    refreshes = provider.refreshes
    per_host = sorted(r["refreshes"] for r in found)
    errors = [e for r in found for e in r["errors"]]
    spans = max(1, math.ceil(took / (LIFETIME_S - EARLY_S)))
    title = (f"{HOSTS} hosts x {RECORDS} records x {iterations} access-token asks, rotation on, "
             f"{LIFETIME_S:g} s tokens")
    how = (f"{HOSTS} processes on one PostgreSQL store, {took:.1f} s; refreshes counted by the "
           f"token endpoint ({sum(per_host)} by the hosts: {min(per_host)}-{max(per_host)} each)")
    return [
        Figure(
            key="fleet_refreshes", title=f"{title}: token-endpoint refreshes",
            value=float(refreshes), unit="", baseline=float(HOSTS * RECORDS * spans),
            baseline_label=f"hosts x records x token lifetimes the run spans ({spans}, each "
            f"{LIFETIME_S:g} s less the {EARLY_S:g} s early refresh)",
            target="one refresh per host per token lifetime (ratio <= 1)", limit=1.0, how=how,
            notes=(f"per raw {LIFETIME_S:g} s lifetime: {refreshes / (HOSTS * RECORDS):.1f} "
                   f"refreshes per host and record over {took / LIFETIME_S:.1f} lifetimes",),
        ),
        Figure(
            key="fleet_lost_rotations", title=f"{title}: lost rotations", value=float(lost),
            unit="", baseline=float(refreshes), baseline_label="rotations the provider made",
            target="0 lost", limit=0.0, on_value=True,
            how="a host presenting a refresh token older than one already presented, or a "
            "stored token older than the newest presented",
        ),
        Figure(
            key="fleet_failures", title=f"{title}: failed asks", value=float(len(errors)),
            unit="", baseline=float(sum(r["asks"] for r in found)), baseline_label="asks",
            target="0 failed", limit=0.0, on_value=True,
            notes=tuple(errors[:3]),
        ),
    ]


def _kill_run(pg: Any, home: Path, kills: int, log: Any) -> Figure:
    provider = RotatingProvider(LIFETIME_S, grace=True, jitter=0.02).start()
    fleet = _Fleet(pg, provider, home, "fleet_kill")
    rng = random.Random(20)  # noqa: S311 - when to kill, not a secret
    phases = {ASKING: 0, ANSWERED: 0}
    try:
        log(f"fleet: {kills} SIGKILLs of a refreshing host")
        fleet.start(None)
        deadline = time.monotonic() + 60 + 10 * kills
        while sum(phases.values()) < kills and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.02, 0.2))
            busy: list[int] = []
            waited = time.monotonic()
            while not busy and time.monotonic() - waited < 5:
                busy = [s for s in range(HOSTS) if fleet.state[s] in (ASKING, ANSWERED)]
                if not busy:
                    time.sleep(0.001)
            if not busy:
                continue
            slot = rng.choice(busy)
            phase = fleet.state[slot]
            fleet.procs[slot].kill()  # SIGKILL, by its PID
            fleet.procs[slot].join(10)
            fleet.state[slot] = IDLE
            phases[phase] += 1
            fleet.spawn(slot, None)  # a new host takes its place
            fleet.wait_ready(1)
        fleet.stop.set()
        found = fleet.results(HOSTS)
        lost = fleet.lost()
    finally:
        fleet.close()
        provider.stop()
    errors = [e for r in found for e in r["errors"]]
    return Figure(
        key="fleet_kill_lost",
        title=f"{HOSTS} hosts, a refreshing host SIGKILLed {sum(phases.values())} times: "
        "committed rotations lost",
        value=float(lost), unit="", baseline=float(provider.refreshes),
        baseline_label="rotations the provider made in the run", target="0 lost", limit=0.0,
        on_value=True,
        how=f"killed while asking the provider {phases[ASKING]} times, after its answer and "
        f"before the commit {phases[ANSWERED]} times; a new host took each one's place",
        notes=(
            f"uncommitted rotations the provider issued to killed hosts: {provider.orphaned} "
            "(lost with the host, as nothing stored them; the provider's one-step grace took "
            "the previous token back, as providers with a rotation grace period do)",
            f"failed asks on the surviving hosts: {len(errors)}",
            *errors[:2],
        ),
    )


def _read_figure(pg: Any, home: Path, rounds: int, count: int, log: Any) -> Figure:
    from robomail_plugin.credentials.pg_store import PostgresCredentialStore
    from robomail_plugin.credentials.records import OAuthRecord
    from robomail_plugin.credentials.store import SQLiteCredentialStore

    record = OAuthRecord(
        record_name="read", client_account="read@example.test", client_id="c",
        client_secret="s" * 40, refresh_token="r" * 200,
        authorization_endpoint="https://auth.example.test/a",
        token_endpoint="https://auth.example.test/t", scope="mail",
    )
    shared = PostgresCredentialStore(pg.create_database("fleet_read"), home)
    embedded = SQLiteCredentialStore(home / "embedded")
    log(f"fleet: {count} record reads, PostgreSQL vs embedded")
    try:
        times: dict[str, list[float]] = {"pg": [], "sqlite": []}
        for store in (shared, embedded):
            store.add(record)
            store.get("read")
        for _ in range(rounds):
            for key, store in (("pg", shared), ("sqlite", embedded)):
                start = time.perf_counter()
                for _ in range(count):
                    store.get("read")
                times[key].append((time.perf_counter() - start) / count * 1000)
    finally:
        shared.close()
    pg_ms, sqlite_ms = statistics.median(times["pg"]), statistics.median(times["sqlite"])
    return Figure(
        key="fleet_read", title="Reading a record (store.get) from the PostgreSQL store",
        value=pg_ms, unit="ms", baseline=sqlite_ms, baseline_label="the embedded store",
        target="within 2x of the embedded store (ratio <= 2)", limit=2.0,
        how=f"{count} gets of one record, mean per get, median of {rounds}; loopback TCP, "
        "pooled connection, one statement, both secrets decrypted",
    )


def fleet_figures(bench: Bench, size: dict[str, int], log: Any) -> list[Figure]:
    from robomail_plugin.credentials.pg_private import PrivatePostgres

    iterations = size["oauth"]
    kills = 20 if iterations >= 200 else 2
    home = bench.work / "fleet"
    home.mkdir()
    with PrivatePostgres() as pg:
        figures = [_read_figure(pg, home, size["repeat"], max(50, iterations * 2), log)]
        figures += _steady_run(pg, home, iterations, log)
        figures.append(_kill_run(pg, home, kills, log))
    return figures
