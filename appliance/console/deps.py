"""What the console is given by the server process that hosts it.

The console sits below the server in the layers: the server builds these from its own
services (the control plane, the audit recorder, the policy engine's status, the risk
classifier) and hands them over, so every console action runs through the same
functions as the CLI and the admin API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance.audit.rows import admin_row
from appliance.config import Config
from appliance.console.auditlog import AuditView
from appliance.console.store import ConsoleStore
from appliance.keys.store import ControlPlane

log = logging.getLogger(__name__)

#: Appends one admin row to the audit log; returns once it is durable.
AuditSink = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class ConsoleDeps:
    config: Config
    control: ControlPlane
    store: ConsoleStore
    audit_sink: AuditSink
    view: AuditView
    #: The policy engine's status (revision in force, last refused edit).
    policy_status: Callable[[], Mapping[str, Any]]
    #: The running risk classifier (application registration reads purposes with it).
    classifier: Any = None
    #: Background tasks the console owns (idle release of the audit files).
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def audit(
        self, actor: str, action: str, details: Mapping[str, Any] | None = None, *,
        tenant: str | None = None, kind: str = "console",
    ) -> None:
        """Record a console act (who, what, before and after) durably, before answering."""
        row = admin_row(kind, f"console:{actor}", {"action": action, **(details or {})}, tenant=tenant)
        await self.audit_sink(row)


def open_console(
    config: Config,
    control: ControlPlane,
    audit_sink: AuditSink,
    policy_status: Callable[[], Mapping[str, Any]],
    classifier: Any = None,
) -> ConsoleDeps:
    return ConsoleDeps(
        config=config,
        control=control,
        store=ConsoleStore(control.backend),
        audit_sink=audit_sink,
        view=AuditView(config),
        policy_status=policy_status,
        classifier=classifier,
    )


async def release_idle(deps: ConsoleDeps) -> None:
    """Close the audit view's files when no page used them for a while."""
    idle = deps.config.console.audit_idle_close_s
    while True:
        await asyncio.sleep(min(idle, 30.0))
        try:
            await asyncio.to_thread(deps.view.close_if_idle, idle)
            await asyncio.to_thread(
                deps.store.expire_sessions,
                deps.config.console.idle_timeout_s,
                deps.config.console.absolute_timeout_s,
            )
        except Exception as e:  # noqa: BLE001 - housekeeping must not end; the next tick retries
            log.warning("console housekeeping failed: %s", type(e).__name__)
