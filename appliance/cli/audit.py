"""``appliance audit verify | search | shred | purge | rotate-key | checkpoint``.

Every command works while servers are running: readers have the writers seal their
current segment first (see :mod:`appliance.audit.reader`). Exit status: 0 success,
1 verification found a problem, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from pathlib import Path
from typing import Any

import orjson

from appliance.config import Config, load_config


def _config(args: argparse.Namespace) -> Config:
    fleet = {"audit": {"read_from": "archive"}} if getattr(args, "fleet", False) else None
    return load_config(args.config, data_dir=args.data_dir, overrides=fleet)


def _state_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="TOML config file")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory")


_REL = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str) -> dt.datetime:
    """ISO 8601 (UTC if no zone) or a relative age such as ``15m``, ``24h``, ``7d``."""
    m = _REL.match(text.strip())
    if m:
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=int(m[1]) * _UNITS[m[2]])
    t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


# -- verify -------------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    from appliance.audit.keys import load_public_key
    from appliance.audit.segments import AuditPaths
    from appliance.audit.verify import verify

    config = _config(args)
    paths = AuditPaths.from_config(config)
    if args.public_key is not None:
        public = load_public_key(args.public_key)
    elif paths.public_key.exists():
        print(
            f"warning: trusting the public key stored in the data dir ({paths.public_key}); "
            "pass --public-key with a copy kept elsewhere",
            file=sys.stderr,
        )
        public = load_public_key(paths.public_key)
    else:
        print("error: no public key (pass --public-key FILE)", file=sys.stderr)
        return 2
    report = verify(config, public, extra_checkpoint_dirs=args.checkpoints or (), fresh=not args.no_rotate)
    if args.json:
        print(
            orjson.dumps(
                {
                    "ok": report.ok,
                    "problems": [str(p) for p in report.problems],
                    "first_broken": None
                    if report.first() is None
                    else {"segment_id": report.first().segment_id, "seq": report.first().seq},  # type: ignore[union-attr]
                    "warnings": report.warnings,
                    "segments": [vars(s) for s in report.segments],
                }
            ).decode()
        )
    else:
        for w in report.warnings:
            print(f"warning: {w}", file=sys.stderr)
        total = sum(s.records for s in report.segments)
        if report.ok:
            print(f"OK: {len(report.segments)} segments, {total} records, chain and checkpoints verified")
        else:
            first = report.problems[0]
            print(f"BROKEN: first broken record: {first}")
            for p in report.problems[1:]:
                print(f"  also: {p}")
    if args.strict and report.warnings:
        return 1
    return 0 if report.ok else 1


# -- search -------------------------------------------------------------------------------


def _text_line(row: dict[str, Any]) -> str:
    cols = ("ts_start", "request_id", "kind", "tenant", "user_id", "application", "model",
            "decision", "risk_class", "status", "total_tokens", "pii_total")
    return "  ".join(f"{c}={row.get(c)}" for c in cols)


def cmd_search(args: argparse.Namespace) -> int:
    from appliance.audit.admin_log import append_admin
    from appliance.audit.envelope import SealedPayload, TenantKeyStore
    from appliance.audit.keys import key_bytes, load_secret
    from appliance.audit.reader import open_reader, public_row

    config = _config(args)
    filters: dict[str, Any] = {
        "since": parse_time(args.since) if args.since else None,
        "until": parse_time(args.until) if args.until else None,
        "tenant": args.tenant,
        "user": args.user,
        "application": args.application,
        "model": args.model,
        "decision": args.decision,
        "risk_class": args.risk_class,
        "request_id": args.request_id,
        "kind": args.kind,
    }
    with open_reader(config, fresh=not args.no_rotate) as reader:
        rows = list(reader.search(limit=args.limit, raw=True, **filters))
        skipped = len(reader.skipped)
        silent = list(reader.silent)
        keystore_path = reader.paths.keystore
    keystore: TenantKeyStore | None = None
    if args.decrypt_payloads:
        with_payload = [r for r in rows if r.get("payload_ct") is not None]
        # The access is recorded (durably) before anything is decrypted.
        append_admin(
            config,
            "access",
            {
                "action": "decrypt_payloads",
                "reason": args.reason,
                "filters": {k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                            for k, v in filters.items() if v is not None},
                "request_ids": [r["request_id"] for r in with_payload],
            },
        )
        secret = load_secret(config.audit.master_key, config.storage.data_dir, "audit master")
        keystore = TenantKeyStore(keystore_path, key_bytes(secret, "audit master"))
    out = sys.stdout
    for raw in rows:
        row = public_row(raw)
        if keystore is not None and raw.get("payload_ct") is not None:
            sealed = SealedPayload(raw["payload_key_id"], bytes(raw["payload_nonce"]), bytes(raw["payload_ct"]))
            payload = keystore.open(raw["tenant"] or "_none", raw["request_id"], sealed)
            row["payload"] = payload if payload is not None else {"shredded": True}
        if args.json:
            out.write(orjson.dumps(row, default=str).decode() + "\n")
        else:
            out.write(_text_line(row) + "\n")
    if skipped and not args.json:
        print(f"note: {skipped} segment(s) being written were not read", file=sys.stderr)
    for replica in silent:
        print(f"warning: replica {replica} did not seal on request: its newest records are missing",
              file=sys.stderr)
    return 0


# -- shred, rotate-key, purge, checkpoint ------------------------------------------------


def _keystore(config: Config) -> Any:
    from appliance.audit.envelope import TenantKeyStore
    from appliance.audit.keys import key_bytes, load_secret
    from appliance.audit.segments import AuditPaths

    secret = load_secret(config.audit.master_key, config.storage.data_dir, "audit master")
    return TenantKeyStore(AuditPaths.from_config(config).keystore, key_bytes(secret, "audit master"))


def cmd_shred(args: argparse.Namespace) -> int:
    from appliance.audit.admin_log import append_admin

    config = _config(args)
    store = _keystore(config)
    append_admin(config, "shred", {"tenant": args.tenant}, tenant=args.tenant)
    gone = store.shred(args.tenant)
    print(f"shredded {len(gone)} data key(s) of tenant {args.tenant}: its stored payloads are unreadable")
    _drop_state(config, args.tenant)
    return 0


def _drop_state(config: Config, tenant: str) -> None:
    """Stored responses, files and batches of a shredded tenant: unreadable now, removed."""
    from appliance.audit.sealed_store import SealedStore, state_path

    if not state_path(config).exists():
        return
    state = SealedStore.open(config)
    try:
        n = state.drop_tenant(tenant)
    finally:
        state.close()
    print(f"removed {n} stored response(s), file(s) and batch(es) of tenant {tenant}")


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from appliance.audit.admin_log import append_admin
    from appliance.audit.keys import fingerprint, key_bytes

    config = _config(args)
    if args.new_key_env:
        text = os.environ.get(args.new_key_env)
        if not text:
            print(f"error: ${args.new_key_env} is not set", file=sys.stderr)
            return 2
    else:
        text = Path(args.new_key_file).read_text("ascii")
    new = key_bytes(text.strip(), "new audit master")
    store = _keystore(config)
    n = store.rotate_master(new)
    append_admin(config, "rotate_key", {"new_master_key_id": fingerprint(new), "data_keys": n})
    print(f"rewrapped {n} data key(s) under the new master key ({fingerprint(new)}); "
          "now point the config (or its env var / key file) at the new key")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from appliance.audit.purge import purge

    config = _config(args)
    now = parse_time(args.now).timestamp() if args.now else None
    plan = purge(config, now=now, dry_run=args.dry_run)
    verb = "would purge" if args.dry_run else "purged"
    print(f"{verb} {plan.records} record(s): {len(plan.segments)} segment(s) thinned, "
          f"{len(plan.dropped)} segment(s) dropped")
    for seg, why in plan.skipped.items():
        if why != "not sealed":
            print(f"note: {seg} skipped ({why})", file=sys.stderr)
    if not args.dry_run:
        _purge_state(config, now)
    return 0


def _purge_state(config: Config, now: float | None) -> None:
    """Stored responses, files and batches past their tenant's retention are deleted too."""
    from appliance.audit.sealed_store import SealedStore, state_path

    if not state_path(config).exists():
        return
    state = SealedStore.open(config)
    try:
        n = state.purge_expired(config, now)
    finally:
        state.close()
    print(f"purged {n} stored response(s), file(s) and batch(es) past retention")


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from appliance.audit.reader import request_rotation
    from appliance.audit.segments import AuditPaths, db_key, signer
    from appliance.audit.writer import recover_orphans

    config = _config(args)
    paths = AuditPaths.from_config(config)
    request_rotation(paths)
    recovered = recover_orphans(config, paths, db_key(config), signer(config, paths))
    print(f"asked running writers to seal their segments; sealed {len(recovered)} orphaned segment(s)")
    for seg in recovered:
        print(f"  recovered {seg}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="the audit log: verify, search, shred, purge, keys")
    cmds = audit.add_subparsers(dest="audit_command", required=True)

    p = cmds.add_parser("verify", help="recompute hashes, Merkle roots and signatures")
    _state_args(p)
    p.add_argument("--public-key", type=Path, default=None, help="trusted Ed25519 public key (PEM)")
    p.add_argument("--checkpoints", type=Path, action="append", help="extra checkpoint directory (mirror copy)")
    p.add_argument("--no-rotate", action="store_true", help="do not ask running writers to seal first")
    p.add_argument("--strict", action="store_true", help="also fail on unsigned records and unread segments")
    p.add_argument("--fleet", action="store_true",
                   help="every replica's segments, from [audit] archive_url (live replicas seal first)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = cmds.add_parser("search", help="print records")
    _state_args(p)
    for name in ("since", "until", "tenant", "user", "application", "model", "decision", "request-id", "kind"):
        p.add_argument(f"--{name}")
    p.add_argument("--risk-class", choices=("prohibited", "high", "limited", "minimal"))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.add_argument("--decrypt-payloads", action="store_true", help="decrypt stored prompts/answers (audited)")
    p.add_argument("--reason", default=None, help="why payloads are decrypted (recorded)")
    p.add_argument("--no-rotate", action="store_true", help="do not ask running writers to seal first")
    p.add_argument("--fleet", action="store_true",
                   help="every replica's segments, from [audit] archive_url (live replicas seal first)")
    p.set_defaults(func=cmd_search)

    p = cmds.add_parser("shred", help="destroy a tenant's payload data keys (GDPR Art. 17)")
    _state_args(p)
    p.add_argument("--tenant", required=True)
    p.set_defaults(func=cmd_shred)

    p = cmds.add_parser("purge", help="remove records past retention (recorded in the chain)")
    _state_args(p)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--now", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_purge)

    p = cmds.add_parser("rotate-key", help="rewrap the tenant data keys under a new master key")
    _state_args(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--new-key-env", help="environment variable holding the new master key")
    g.add_argument("--new-key-file", help="file holding the new master key")
    p.set_defaults(func=cmd_rotate_key)

    p = cmds.add_parser("checkpoint", help="have running writers seal; seal segments of dead writers")
    _state_args(p)
    p.set_defaults(func=cmd_checkpoint)
