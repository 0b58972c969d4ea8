"""CLI: ``appliance risk classify [--json]`` and ``appliance apps register|list``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from appliance.config import Config, load_config
from appliance.errors import ConfigError
from appliance.pii.special.categories import ART9_BASES, parse_basis


def _state_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="TOML config file")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory")


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config, data_dir=args.data_dir)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    risk = sub.add_parser("risk", help="EU AI Act risk tagging and safety screening")
    rsub = risk.add_subparsers(dest="risk_command", required=True)
    c = rsub.add_parser("classify", help="classify text read from stdin")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.add_argument("--no-embeddings", action="store_true", help="rules only (no ONNX model)")
    _state_args(c)
    c.set_defaults(func=cmd_classify)

    apps = sub.add_parser("apps", help="the application registry (declared purposes)")
    asub = apps.add_subparsers(dest="apps_command", required=True)
    r = asub.add_parser("register", help="register (or update) an application")
    r.add_argument("--tenant", required=True)
    r.add_argument("--name", required=True)
    r.add_argument("--purpose", required=True, help="the intended purpose, in words")
    r.add_argument("--annex-iii", default=None, help="Annex III area (1-8 or its id)")
    r.add_argument(
        "--art9-basis", action="append", default=None, metavar="CATEGORY=BASIS",
        help="GDPR Art. 9(2) legal basis for a special category the application processes "
             "(repeatable; CATEGORY is HEALTH, RELIGION, ... or * for all; BASIS is one of "
             f"{', '.join(ART9_BASES)}); 'none' clears them; omitted: unchanged",
    )
    r.add_argument("--json", action="store_true", help="print JSON")
    _state_args(r)
    r.set_defaults(func=cmd_apps_register)
    ls = asub.add_parser("list", help="list registered applications")
    ls.add_argument("--tenant", default=None)
    ls.add_argument("--json", action="store_true", help="print JSON")
    _state_args(ls)
    ls.set_defaults(func=cmd_apps_list)


def _classifier(config: Config, embeddings: bool = True) -> Any:
    from appliance.risk.engine import build_classifier

    if not embeddings:
        config = config.model_copy(
            update={"risk": config.risk.model_copy(update={"embeddings": False})}
        )
    return build_classifier(config)


def cmd_classify(args: argparse.Namespace) -> int:
    from appliance.risk.engine import threshold_store

    try:
        config = _config(args)
        clf = _classifier(config, not args.no_embeddings)
        thresholds = threshold_store(config, clf).current().of("prompt")
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    text = sys.stdin.read()
    risk = clf.classify(text)
    safety = clf.screen(text)
    actions = {c: thresholds[c].action(s) for c, s in safety.scores.items() if c in thresholds}
    try:
        attack, attack_action = _prompt_attack(config, text)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    out = {
        "risk_class": risk.risk_class,
        "areas": risk.facts(),
        "safety": safety.rounded(),
        "safety_flags": sorted(c for c, a in actions.items() if a != "allow"),
        "safety_blocked": sorted(c for c, a in actions.items() if a == "block"),
        "prompt_attack": {"score": attack.score, "technique": attack.technique,
                          "rules": list(attack.rules), "action": attack_action},
    }
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    print(f"risk class: {risk.risk_class}")
    for a in risk.areas:
        title = clf.taxonomy.area(a.id).title
        print(f"  {a.id:<18} {a.article:<14} {a.score:.2f}  {title}")
    flagged = ", ".join(f"{c} ({safety.scores[c]:.2f}, {actions[c]})" for c in out["safety_flags"])
    print(f"safety: {flagged or 'nothing flagged'}")
    if attack.score > 0:
        print(f"prompt attack: {attack.score:.2f} {attack.technique} ({attack_action} as the "
              f"caller's own words; rules: {', '.join(attack.rules)})")
    else:
        print("prompt attack: nothing found")
    return 0


def _prompt_attack(config: Config, text: str) -> tuple[Any, str]:
    """The prompt-attack screen's score of ``text`` as a request, and what the policy data
    (``<policy.dir>/data/prompt_attacks.yaml``) would do with it: block, flag or allow."""
    import yaml

    from appliance.risk.attacks import PromptAttackScreen, load_attack_rules

    found = PromptAttackScreen(load_attack_rules(config.risk.prompt_attack_rules)).score(text)
    path = config.policy.directory / "data" / "prompt_attacks.yaml"
    try:
        limits = (yaml.safe_load(path.read_text("utf-8")) or {}).get("prompt_attacks") or {}
        block = float((limits.get("block") or {}).get("request", 0.9))
        flag = float(limits.get("flag", 0.5))
    except FileNotFoundError:
        block, flag = 0.9, 0.5
    except (yaml.YAMLError, TypeError, ValueError, AttributeError) as e:
        raise ConfigError(f"{path}: not valid prompt-attack thresholds: {e}") from None
    action = "block" if found.score >= block else "flag" if found.score >= flag else "allow"
    return found, action


def _control(config: Config) -> Any:
    from appliance.keys.store import ControlPlane, control_plane_path

    return ControlPlane.open(control_plane_path(config.storage.data_dir))


def _art9_basis(specs: list[str] | None) -> dict[str, str] | None:
    """``--art9-basis`` values as category -> basis (None: not given; {}: 'none')."""
    if specs is None:
        return None
    if [s.strip().lower() for s in specs] == ["none"]:
        return {}
    return dict(parse_basis(s) for s in specs)


def cmd_apps_register(args: argparse.Namespace) -> int:
    from appliance.risk.apps import register_application

    try:
        art9_basis = _art9_basis(args.art9_basis)
        config = _config(args)
        clf = _classifier(config, config.risk.embeddings)
    except (ConfigError, ValueError) as e:
        print(str(e), file=sys.stderr)
        return 2
    control = _control(config)
    try:
        app = register_application(
            control, tenant=args.tenant, name=args.name, purpose=args.purpose,
            annex_iii=args.annex_iii, classifier=clf, art9_basis=art9_basis,
        )
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    finally:
        control.close()
    if args.json:
        print(json.dumps(app, ensure_ascii=False))
    else:
        ids = ", ".join(str(a["id"]) for a in app["areas"]) or "none"
        print(f"registered {app['tenant']}/{app['name']}: {app['risk_class']} (areas: {ids}; "
              f"Art. 9(2) basis: {_basis_text(app['art9_basis'])})")
    return 0


def cmd_apps_list(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    control = _control(config)
    try:
        apps = control.list_apps(args.tenant)
    finally:
        control.close()
    if args.json:
        print(json.dumps(apps, ensure_ascii=False))
        return 0
    for app in apps:
        ids = ",".join(str(a["id"]) for a in app["areas"]) or "-"
        basis = _basis_text(app["art9_basis"]) if app["art9_basis"] else "-"
        print(f"{app['tenant']}\t{app['name']}\t{app['risk_class']}\t{ids}\t{basis}\t{app['purpose']}")
    return 0


def _basis_text(basis: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(basis.items())) or "none"
