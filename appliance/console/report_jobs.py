"""Reports from the console: the CLI's export, run in a child process.

``appliance.reports.export.export`` is the one code path (``appliance report export``
calls it too). It runs in a child because it opens every audit segment: in the server
process those files are held by this process's writer and by the console's own view,
and DuckDB refuses to attach one file twice in a process. The child gets the running
configuration as JSON on stdin (secrets stay in the environment it inherits) and
writes the file into a private temporary directory that the caller removes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.children import child_env, module_command
from appliance.config import Config
from appliance.reports.request import IncidentDetails, Period, ReportRequest

#: Longest a report may take before the console gives up on it, in seconds.
TIMEOUT_S = 600.0


class ReportFailed(Exception):
    """The export did not produce a file; the message is the exporter's own."""


@dataclass(frozen=True)
class Produced:
    path: Path
    media_type: str
    filename: str
    summary: dict[str, Any]


def _request_doc(request: ReportRequest) -> dict[str, Any]:
    inc = request.incident
    return {
        "kind": request.kind,
        "first": request.period.first.isoformat(),
        "last": request.period.last.isoformat(),
        "tenant": request.tenant,
        "application": request.application,
        "request_ids": list(request.request_ids),
        "incident": {
            "aware_at": inc.aware_at.isoformat() if inc.aware_at else None,
            "severity": inc.severity,
            "description": inc.description,
        },
        "verify": request.verify,
    }


def _request_of(doc: dict[str, Any]) -> ReportRequest:
    inc = doc["incident"]
    return ReportRequest(
        kind=doc["kind"],
        period=Period(dt.date.fromisoformat(doc["first"]), dt.date.fromisoformat(doc["last"])),
        tenant=doc["tenant"],
        application=doc["application"],
        request_ids=tuple(doc["request_ids"]),
        incident=IncidentDetails(
            aware_at=dt.datetime.fromisoformat(inc["aware_at"]) if inc["aware_at"] else None,
            severity=inc["severity"],
            description=inc["description"],
        ),
        verify=doc["verify"],
    )


async def export_report(config: Config, request: ReportRequest, fmt: str, out_dir: Path) -> Produced:
    """Write ``request`` as ``fmt`` under ``out_dir`` (in a child process)."""
    from appliance.reports.formats import formats

    spec = formats()[fmt]
    out = out_dir / f"{request.kind}-{request.period.first}-{request.period.last}{spec.suffix}"
    job = json.dumps({
        "config": config.model_dump(mode="json"),
        "request": _request_doc(request),
        "format": fmt,
        "out": str(out),
    }).encode()
    proc = await asyncio.create_subprocess_exec(
        *module_command("appliance.console.report_jobs"), env=child_env(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(job), TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ReportFailed("the report took too long") from None
    try:
        answer: dict[str, Any] = json.loads(stdout.decode() or "{}")
    except json.JSONDecodeError:
        answer = {}
    if proc.returncode != 0 or not answer.get("ok") or not out.exists():
        raise ReportFailed(str(answer.get("error") or "the report could not be written"))
    return Produced(out, spec.media_type, out.name, answer)


def _child() -> int:
    """Run one export job read from stdin; print its outcome as one JSON line."""
    from appliance.reports.export import export
    from appliance.reports.report import ReportError

    job = json.loads(sys.stdin.read())
    config = Config.model_validate(job["config"])
    try:
        result = export(config, _request_of(job["request"]), job["format"], Path(job["out"]))
    except (ReportError, ValueError) as e:
        print(json.dumps({"ok": False, "error": str(e)}))
        return 2
    print(json.dumps({
        "ok": True,
        "records": result.records,
        "rows": result.rows,
        "checkpoint_digest": result.checkpoint_digest,
        "verified": result.verified,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(_child())
