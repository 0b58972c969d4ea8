"""``appliance policy bundle keygen | build | verify``: signed OPA bundles for a fleet.

``build`` reads a policy directory, runs its tests (a bundle whose tests fail is not
built), and writes the OPA bundle format: ``.tar.gz`` with ``.manifest`` (revision,
roots), the Rego modules, ``data.json`` and ``.signatures.json`` (ES256). Replicas with
``[policy] bundle_url`` poll it; a real OPA loads the same file with
``--verification-key <public.pem> --verification-key-id <key id>``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def cmd_keygen(args: argparse.Namespace) -> int:
    from appliance.policy.bundle import new_signing_key

    private, public = new_signing_key()
    fd = os.open(args.private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    Path(args.public).write_bytes(public)
    print(f"wrote {args.private} (keep it with whoever approves policy) and {args.public} "
          "(give it to every replica: [policy] bundle_public_key_file)")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from appliance.policy.bundle import build
    from appliance.policy.engine import compile_source
    from appliance.policy.runner import run_tests
    from appliance.policy.source import PolicyLoadError, load_source

    try:
        source = load_source(args.dir)
        compile_source(source, args.entrypoint)
    except PolicyLoadError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    report = run_tests(source)
    if report.failed:
        failed = ", ".join(r.case.name for r in report.results if not r.passed)
        print(f"error: {report.failed} test(s) fail ({failed}); no bundle written", file=sys.stderr)
        return 1
    data, revision = build(source, args.signing_key.read_bytes(), key_id=args.key_id,
                           revision=args.revision)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, args.out)  # a poller never sees half a bundle on a shared directory
    print(f"wrote {args.out}: revision {revision}, {len(source.modules)} modules, "
          f"{len(report.results)} tests passed, {len(data)} bytes")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from appliance.policy.bundle import BundleRejected, read
    from appliance.policy.runner import run_tests

    try:
        source = read(args.bundle.read_bytes(), args.public_key.read_bytes(), key_id=args.key_id)
    except BundleRejected as e:
        print(f"REJECTED: {e.message}", file=sys.stderr)
        return 1
    report = run_tests(source)
    if report.failed:
        print(f"REJECTED: revision {source.revision}: {report.failed} test(s) fail", file=sys.stderr)
        return 1
    print(f"OK: revision {source.revision}, signature verified, {len(report.results)} tests passed")
    return 0


def register(policy_commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bundle = policy_commands.add_parser("bundle", help="signed OPA bundles: keygen, build, verify")
    bsub = bundle.add_subparsers(dest="bundle_command", required=True)
    p = bsub.add_parser("keygen", help="a new ES256 signing key pair")
    p.add_argument("--private", type=Path, required=True)
    p.add_argument("--public", type=Path, required=True)
    p.set_defaults(func=cmd_keygen)
    p = bsub.add_parser("build", help="test and sign a policy directory into a bundle")
    p.add_argument("--dir", type=Path, default=Path("policies"), help="policy directory")
    p.add_argument("--signing-key", type=Path, required=True, help="EC P-256 private key (PEM)")
    p.add_argument("--key-id", default="appliance", help="key id named in the signature")
    p.add_argument("--revision", default=None, help="revision (default: content hash)")
    p.add_argument("--entrypoint", default="appliance/main/decision", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_build)
    p = bsub.add_parser("verify", help="check a bundle's signature and run its tests")
    p.add_argument("bundle", type=Path)
    p.add_argument("--public-key", type=Path, required=True)
    p.add_argument("--key-id", default="appliance")
    p.set_defaults(func=cmd_verify)
