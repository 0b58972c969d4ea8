"""Checks of the engines a fleet shares: PostgreSQL (schema and change feed), Redis (the
counters) and the audit archive. Each says what happens to requests while it is down."""

from __future__ import annotations

import asyncio

from appliance.doctor.outcome import Outcome, Setup, fail, ok, warn


def check_state(setup: Setup) -> Outcome:
    config = setup.config
    if config.state.backend != "postgres":
        return ok("control plane: SQLite in the data dir (one box)")
    from appliance.errors import EngineUnavailable
    from appliance.keys.migrations import LATEST, SchemaMismatch
    from appliance.keys.store import open_control_plane

    grace = config.state.outage_grace_s
    mode = f"cached keys served {grace:g} s, then fail closed" if grace else "fail closed"
    try:
        open_control_plane(config).close()
    except EngineUnavailable:
        return fail(f"control plane: PostgreSQL unreachable (requests: {mode})",
                    f"check ${config.state.dsn_env} and that the database accepts connections")
    except SchemaMismatch as e:
        return fail(f"control plane: {e}", "run `appliance db upgrade`")
    return ok(f"control plane: PostgreSQL reachable, schema at version {LATEST}, on outage: {mode}")


def check_counters(setup: Setup) -> Outcome:
    config = setup.config
    if config.limits.backend != "redis":
        return ok("counters: SQLite in the data dir (exact on this host only)")
    from appliance.metering.meter import open_store

    async def probe() -> bool:
        store = open_store(config)
        try:
            await asyncio.wait_for(store.start(), 5)
        except Exception:  # noqa: BLE001 - any failure to connect is the finding
            return False
        finally:
            await store.aclose()
        return True

    mode = config.fleet.redis_outage
    if asyncio.run(probe()):
        return ok(f"counters: Redis reachable, on outage: fail {mode}")
    return fail(f"counters: Redis unreachable (requests: fail {mode})",
                "check [limits] redis_url and the Redis server")


def check_archive(setup: Setup) -> Outcome:
    config = setup.config
    url = config.audit.archive_url
    if url is None:
        return ok("audit archive: none (segments stay in the data dir)")
    from appliance.audit.archive import sealed_segments
    from appliance.audit.segments import AuditPaths
    from appliance.objstore.store import StoreError, open_store

    backlog = len(sealed_segments(AuditPaths.from_config(config)))
    try:
        store = open_store(url)
        next(iter(store.list("replicas/")), None)
    except (StoreError, ValueError) as e:
        return fail(f"audit archive {url} unreachable: {e}; {backlog} sealed segment(s) wait locally",
                    "segments stay on this replica's disk and are shipped once the store answers")
    if backlog:
        return warn(f"audit archive {url} reachable; {backlog} sealed segment(s) not shipped yet")
    return ok(f"audit archive {url} reachable, nothing waiting to ship")
