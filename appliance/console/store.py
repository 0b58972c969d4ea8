"""The console's own tables: users, sessions, sign-in states, policy changes and revisions.

They live in the control plane's database, beside keys and applications, and run on its
backend (:class:`appliance.keys.backend.StateBackend`): SQLite on one box, PostgreSQL
shared by a fleet's replicas (so a session or a policy change is seen by every replica).
The tables are created by the control plane's versioned migrations
(:mod:`appliance.keys.migrations`, ``appliance db upgrade``), not here. The SQL is the
common subset of both engines: ``?`` placeholders, ``ON CONFLICT ... DO UPDATE``.
Session ids and sign-in states are stored as SHA-256 digests, never as the token the
browser holds; passwords only as argon2 hashes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.config.console import ROLES
from appliance.keys.backend import StateBackend

#: How long an OpenID Connect sign-in may take from redirect to callback, in seconds.
LOGIN_STATE_TTL_S = 600.0


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    username: str
    display_name: str
    roles: tuple[str, ...]
    tenant: str | None
    source: str
    disabled: bool
    failed_logins: int
    locked_until: float | None
    language: str | None
    created_at: float
    last_login_at: float | None
    password_hash: str | None = None

    def public(self) -> dict[str, Any]:
        """As ``users list`` prints it (never the hash)."""
        return {
            "username": self.username,
            "display_name": self.display_name,
            "roles": list(self.roles),
            "tenant": self.tenant,
            "source": self.source,
            "disabled": self.disabled,
            "locked": self.locked_until is not None and self.locked_until > time.time(),
            "language": self.language,
            "created_at": self.created_at,
            "last_login_at": self.last_login_at,
        }


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: who, with which roles, since when."""

    id_hash: str
    username: str
    roles: frozenset[str]
    tenant: str | None
    source: str
    csrf: str
    created_at: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class LoginState:
    """An OpenID Connect sign-in under way (PKCE verifier and nonce, kept server-side)."""

    nonce: str
    verifier: str
    next_path: str


@dataclass(frozen=True, slots=True)
class Change:
    """A proposed policy change: the files it sets, who wrote it, where it stands."""

    id: str
    kind: str  # "edit" | "rollback"
    title: str
    author: str
    status: str  # draft | submitted | rejected | applied | withdrawn
    base_revision: str
    #: Relative path -> new text (None: the file is deleted).
    files: Mapping[str, str | None]
    created_at: float
    submitted_at: float | None
    decided_at: float | None
    decided_by: str | None
    note: str | None
    #: Compile and test results at submission (see appliance/console/policy_flow.py).
    checks: Mapping[str, Any] | None
    #: Replay summary at submission.
    replay: Mapping[str, Any] | None
    applied_revision: str | None
    rollback_to: str | None


def _check_roles(roles: Sequence[str]) -> tuple[str, ...]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(ROLES)}")
    if not roles:
        raise ValueError("a console user needs at least one role")
    return tuple(dict.fromkeys(roles))


def _user(row: Mapping[str, Any]) -> ConsoleUser:
    return ConsoleUser(
        username=row["username"],
        display_name=row["display_name"],
        roles=tuple(json.loads(row["roles"])),
        tenant=row["tenant"],
        source=row["source"],
        disabled=bool(row["disabled"]),
        failed_logins=int(row["failed_logins"]),
        locked_until=row["locked_until"],
        language=row["language"],
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
        password_hash=row["password_hash"],
    )


def _change(row: Mapping[str, Any]) -> Change:
    def js(name: str) -> Any:
        return None if row[name] is None else json.loads(row[name])

    return Change(
        id=row["id"],
        kind=row["kind"],
        title=row["title"],
        author=row["author"],
        status=row["status"],
        base_revision=row["base_revision"],
        files=json.loads(row["files"]),
        created_at=row["created_at"],
        submitted_at=row["submitted_at"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
        note=row["note"],
        checks=js("checks"),
        replay=js("replay"),
        applied_revision=row["applied_revision"],
        rollback_to=row["rollback_to"],
    )


def _incident(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "request_ids": json.loads(row["request_ids"])}


class ConsoleStore:
    """Repository of the console's tables (thread-safe as the backend is)."""

    def __init__(self, db: StateBackend) -> None:
        self._db = db

    # -- users ----------------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        *,
        roles: Sequence[str],
        password_hash: str | None,
        tenant: str | None = None,
        display_name: str = "",
        source: str = "local",
    ) -> ConsoleUser:
        if not username or not username.strip() or len(username) > 200:
            raise ValueError("the username must be 1 to 200 characters")
        checked = _check_roles(roles)
        if "tenant_viewer" in checked and not tenant:
            raise ValueError("a tenant_viewer needs --tenant (the one tenant they may see)")
        now = time.time()
        with self._db.transaction() as tx:
            if tx.query("SELECT 1 AS x FROM console_users WHERE username = ?", (username,)):
                raise ValueError(f"user {username!r} exists already")
            tx.execute(
                "INSERT INTO console_users (username, display_name, roles, tenant, password_hash,"
                " source, created_at) VALUES (?,?,?,?,?,?,?)",
                (username, display_name, json.dumps(list(checked)), tenant, password_hash, source, now),
            )
        user = self.get_user(username)
        assert user is not None
        return user

    def upsert_sso_user(
        self, username: str, *, roles: Sequence[str], tenant: str | None, display_name: str
    ) -> ConsoleUser:
        """Record a user who signed in through the identity provider (roles as mapped now).

        A local account of the same name is left alone: the caller sees its ``source``
        is "local" and refuses the sign-in (a provider cannot take over a local account)."""
        now = time.time()
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO console_users (username, display_name, roles, tenant, source,"
                " created_at) VALUES (?,?,?,?,'oidc',?) ON CONFLICT (username) DO UPDATE SET"
                " display_name = excluded.display_name, roles = excluded.roles,"
                " tenant = excluded.tenant WHERE console_users.source = 'oidc'",
                (username, display_name, json.dumps(list(roles)), tenant, now),
            )
        user = self.get_user(username)
        assert user is not None
        return user

    def get_user(self, username: str) -> ConsoleUser | None:
        rows = self._db.query("SELECT * FROM console_users WHERE username = ?", (username,))
        return _user(rows[0]) if rows else None

    def list_users(self) -> list[ConsoleUser]:
        return [_user(r) for r in self._db.query("SELECT * FROM console_users ORDER BY username")]

    def set_disabled(self, username: str, disabled: bool) -> bool:
        with self._db.transaction() as tx:
            changed = tx.execute(
                "UPDATE console_users SET disabled = ? WHERE username = ?", (int(disabled), username)
            )
            if disabled:
                tx.execute("DELETE FROM console_sessions WHERE username = ?", (username,))
        return changed > 0

    def set_language(self, username: str, language: str) -> None:
        with self._db.transaction() as tx:
            tx.execute("UPDATE console_users SET language = ? WHERE username = ?", (language, username))

    def record_failure(self, username: str, max_failed: int, lockout_s: float) -> bool:
        """Count a failed sign-in; True when this one locked the account."""
        now = time.time()
        with self._db.transaction() as tx:
            rows = tx.query(
                "SELECT failed_logins FROM console_users WHERE username = ?", (username,)
            )
            if not rows:
                return False
            failed = int(rows[0]["failed_logins"]) + 1
            locks = failed >= max_failed
            tx.execute(
                "UPDATE console_users SET failed_logins = ?, locked_until = ? WHERE username = ?",
                (0 if locks else failed, now + lockout_s if locks else None, username),
            )
        return locks

    def record_success(self, username: str) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE console_users SET failed_logins = 0, locked_until = NULL,"
                " last_login_at = ? WHERE username = ?",
                (time.time(), username),
            )

    # -- sessions -------------------------------------------------------------------------

    def create_session(self, user: ConsoleUser, roles: Sequence[str]) -> tuple[str, Session]:
        """A new session; returns (the token for the cookie, shown once, the session)."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(
            id_hash=digest(token),
            username=user.username,
            roles=frozenset(roles),
            tenant=user.tenant,
            source=user.source,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
        )
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO console_sessions (id_hash, username, roles, tenant, source, csrf,"
                " created_at, last_seen) VALUES (?,?,?,?,?,?,?,?)",
                (session.id_hash, session.username, json.dumps(sorted(session.roles)),
                 session.tenant, session.source, session.csrf, now, now),
            )
        return token, session

    def session(self, token: str, idle_s: float, absolute_s: float) -> Session | None:
        """The live session of ``token`` (touched), or None when unknown, expired or its
        user is disabled; an expired session is deleted."""
        id_hash = digest(token)
        now = time.time()
        with self._db.transaction() as tx:
            rows = tx.query(
                "SELECT s.*, u.disabled AS user_disabled FROM console_sessions s"
                " LEFT JOIN console_users u ON u.username = s.username WHERE s.id_hash = ?",
                (id_hash,),
            )
            if not rows:
                return None
            row = rows[0]
            expired = now - row["last_seen"] > idle_s or now - row["created_at"] > absolute_s
            if expired or row["user_disabled"] is None or row["user_disabled"]:
                tx.execute("DELETE FROM console_sessions WHERE id_hash = ?", (id_hash,))
                return None
            tx.execute("UPDATE console_sessions SET last_seen = ? WHERE id_hash = ?", (now, id_hash))
        return Session(
            id_hash=id_hash,
            username=row["username"],
            roles=frozenset(json.loads(row["roles"])),
            tenant=row["tenant"],
            source=row["source"],
            csrf=row["csrf"],
            created_at=row["created_at"],
            last_seen=now,
        )

    def end_session(self, id_hash: str) -> None:
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM console_sessions WHERE id_hash = ?", (id_hash,))

    def expire_sessions(self, idle_s: float, absolute_s: float) -> int:
        now = time.time()
        with self._db.transaction() as tx:
            return tx.execute(
                "DELETE FROM console_sessions WHERE last_seen < ? OR created_at < ?",
                (now - idle_s, now - absolute_s),
            )

    # -- OpenID Connect sign-in states ------------------------------------------------------

    def put_login(self, state: str, login: LoginState) -> None:
        now = time.time()
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM console_logins WHERE created_at < ?", (now - LOGIN_STATE_TTL_S,))
            tx.execute(
                "INSERT INTO console_logins (state_hash, nonce, verifier, next_path, created_at)"
                " VALUES (?,?,?,?,?)",
                (digest(state), login.nonce, login.verifier, login.next_path, now),
            )

    def take_login(self, state: str) -> LoginState | None:
        """The sign-in started with ``state``, removed (a state is good for one callback)."""
        with self._db.transaction() as tx:
            rows = tx.query("SELECT * FROM console_logins WHERE state_hash = ?", (digest(state),))
            tx.execute("DELETE FROM console_logins WHERE state_hash = ?", (digest(state),))
        if not rows or time.time() - rows[0]["created_at"] > LOGIN_STATE_TTL_S:
            return None
        return LoginState(rows[0]["nonce"], rows[0]["verifier"], rows[0]["next_path"])

    # -- policy changes -------------------------------------------------------------------

    def create_change(
        self,
        *,
        kind: str,
        title: str,
        author: str,
        base_revision: str,
        files: Mapping[str, str | None],
        rollback_to: str | None = None,
    ) -> Change:
        change_id = "chg-" + secrets.token_hex(6)
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO console_changes (id, kind, title, author, status, base_revision,"
                " files, created_at, rollback_to) VALUES (?,?,?,?,'draft',?,?,?,?)",
                (change_id, kind, title, author, base_revision, json.dumps(dict(files)),
                 time.time(), rollback_to),
            )
        got = self.get_change(change_id)
        assert got is not None
        return got

    def get_change(self, change_id: str) -> Change | None:
        rows = self._db.query("SELECT * FROM console_changes WHERE id = ?", (change_id,))
        return _change(rows[0]) if rows else None

    def list_changes(self, statuses: Sequence[str] | None = None) -> list[Change]:
        if statuses:
            marks = ",".join("?" for _ in statuses)
            rows = self._db.query(
                f"SELECT * FROM console_changes WHERE status IN ({marks}) ORDER BY created_at DESC",
                tuple(statuses),
            )
        else:
            rows = self._db.query("SELECT * FROM console_changes ORDER BY created_at DESC")
        return [_change(r) for r in rows]

    def update_draft(self, change_id: str, author: str, files: Mapping[str, str | None], title: str) -> bool:
        """Replace a draft's files (only its author, only while it is a draft)."""
        with self._db.transaction() as tx:
            n = tx.execute(
                "UPDATE console_changes SET files = ?, title = ?, checks = NULL, replay = NULL"
                " WHERE id = ? AND author = ? AND status = 'draft'",
                (json.dumps(dict(files)), title, change_id, author),
            )
        return n > 0

    def save_results(
        self, change_id: str, *, checks: Mapping[str, Any] | None = None,
        replay: Mapping[str, Any] | None = None,
    ) -> None:
        with self._db.transaction() as tx:
            if checks is not None:
                tx.execute("UPDATE console_changes SET checks = ? WHERE id = ?",
                           (json.dumps(dict(checks)), change_id))
            if replay is not None:
                tx.execute("UPDATE console_changes SET replay = ? WHERE id = ?",
                           (json.dumps(dict(replay)), change_id))

    def transition(
        self, change_id: str, *, from_status: str, to_status: str, by: str | None = None,
        note: str | None = None, applied_revision: str | None = None,
    ) -> bool:
        """Move a change on, only from ``from_status`` (two approvers racing: one wins)."""
        now = time.time()
        sets = ["status = ?"]
        params: list[object] = [to_status]
        if to_status == "submitted":
            sets.append("submitted_at = ?")
            params.append(now)
        if to_status in ("applied", "rejected"):
            sets += ["decided_at = ?", "decided_by = ?", "note = ?"]
            params += [now, by, note]
        if applied_revision is not None:
            sets.append("applied_revision = ?")
            params.append(applied_revision)
        with self._db.transaction() as tx:
            n = tx.execute(
                f"UPDATE console_changes SET {', '.join(sets)} WHERE id = ? AND status = ?",
                (*params, change_id, from_status),
            )
        return n > 0

    # -- incidents (AI Act Art. 73 drafts) ---------------------------------------------------

    def create_incident(
        self, *, title: str, severity: str, aware_at: float, description: str,
        request_ids: Sequence[str], created_by: str,
    ) -> dict[str, Any]:
        incident_id = "inc-" + secrets.token_hex(6)
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO console_incidents (id, title, severity, aware_at, description,"
                " request_ids, created_by, created_at) VALUES (?,?,?,?,?,?,?,?)",
                (incident_id, title, severity, aware_at, description, json.dumps(list(request_ids)),
                 created_by, time.time()),
            )
        found = self.get_incident(incident_id)
        assert found is not None
        return found

    def get_incident(self, incident_id: str) -> dict[str, Any] | None:
        rows = self._db.query("SELECT * FROM console_incidents WHERE id = ?", (incident_id,))
        return _incident(rows[0]) if rows else None

    def list_incidents(self) -> list[dict[str, Any]]:
        return [_incident(r) for r in self._db.query("SELECT * FROM console_incidents ORDER BY aware_at DESC")]

    def set_incident_status(self, incident_id: str, status: str) -> bool:
        with self._db.transaction() as tx:
            return tx.execute("UPDATE console_incidents SET status = ? WHERE id = ?", (status, incident_id)) > 0

    # -- applied revisions ----------------------------------------------------------------

    def record_revision(
        self, revision: str, files: Mapping[str, str], change_id: str | None, by: str | None
    ) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO console_revisions (revision, files, applied_at, change_id, applied_by)"
                " VALUES (?,?,?,?,?) ON CONFLICT (revision) DO UPDATE SET"
                " applied_at = excluded.applied_at, change_id = excluded.change_id,"
                " applied_by = excluded.applied_by",
                (revision, json.dumps(dict(files)), time.time(), change_id, by),
            )

    def revisions(self) -> list[dict[str, Any]]:
        rows = self._db.query(
            "SELECT revision, applied_at, change_id, applied_by FROM console_revisions"
            " ORDER BY applied_at DESC"
        )
        return rows

    def revision_files(self, revision: str) -> dict[str, str] | None:
        rows = self._db.query("SELECT files FROM console_revisions WHERE revision = ?", (revision,))
        return None if not rows else dict(json.loads(rows[0]["files"]))


def split_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (form fields that hold several values)."""
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
