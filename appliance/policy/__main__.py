"""``python -m appliance.policy policy ...``: the policy commands without loading every
other command group (the full CLI imports Presidio, ~20 s on a cold machine)."""

from __future__ import annotations

import argparse
import sys

from appliance.policy.commands import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="appliance")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
