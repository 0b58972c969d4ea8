"""Run one fake provider as its own process (benchmarks, manual tests).

``python -m appliance.testing.fakes openai --port 0 --api-key test-key`` prints one line,
the base URL to configure, then serves until interrupted. A separate process gives the
fake its own core, so it does not compete with the appliance under measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from appliance.testing import fakes
from appliance.testing.fakes._server import FakeProvider

KINDS = {
    "openai": "FakeOpenAI",
    "azure_openai": "FakeAzureOpenAI",
    "hf_endpoint": "FakeHFEndpoint",
    "anthropic": "FakeAnthropic",
    "bedrock": "FakeBedrock",
    "vertex": "FakeVertex",
}


async def serve(fake: FakeProvider, host: str, port: int) -> None:
    await fake.start(host, port)
    print(fake.base_url, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.testing.fakes")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--api-key", default="test-key", help="key (or AWS access key id) the fake accepts"
    )
    parser.add_argument("--no-record", action="store_true", help="do not keep received requests")
    args = parser.parse_args(argv)
    kwargs: dict[str, object] = {"record": not args.no_record}
    if args.kind == "bedrock":
        kwargs["access_key"] = args.api_key
    else:
        kwargs["api_key"] = args.api_key
    fake: FakeProvider = getattr(fakes, KINDS[args.kind])(**kwargs)
    try:
        asyncio.run(serve(fake, args.host, args.port))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
