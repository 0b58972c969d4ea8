"""What one check found: a status, one line of reason, and what to do about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.config import Config

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    #: One line; never a secret value, a prompt or PII.
    message: str
    #: What the operator should do (empty when nothing).
    fix: str = ""


def ok(message: str) -> Outcome:
    return Outcome("ok", message)


def warn(message: str, fix: str = "") -> Outcome:
    return Outcome("warn", message, fix)


def fail(message: str, fix: str = "") -> Outcome:
    return Outcome("fail", message, fix)


@dataclass(frozen=True)
class Setup:
    """What every check receives: the validated config and the doctor's options."""

    config: Config
    config_path: Path | None
    #: How many of the newest records of each audit segment get their chain checked.
    audit_records: int = 1000


Check = Callable[[Setup], Outcome]
