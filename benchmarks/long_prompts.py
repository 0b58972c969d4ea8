"""Long prompts through the real server with every stage on: do they pass, and how long?

Usage: .venv/bin/python benchmarks/long_prompts.py [--sizes 49000,205000,400000]
       [--tries N] [--data-dir DIR]

Starts ``python -m appliance serve`` (the build in the working directory: run this from
another build's root, with PYTHONPATH set to it, to measure that one) on its defaults in front of the fake OpenAI upstream and sends
one chat request per size: a contract and e-mail archive in English and German with
names, addresses, e-mails, phone numbers and IBANs (appliance/testing/documents.py),
from a key of a registered high-risk application (the risk classifier reads some
generated contracts as high-risk, and the default policy serves those only to
registered applications: the subject here is PII). Prints each response's status, time
and error message, then the server's log lines about PII.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx

from appliance.testing.documents import archive
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import (
    UPSTREAM_KEY_ENV,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)

ADMIN = "admin-long-prompts"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="49000,205000,400000")
    ap.add_argument("--tries", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, help="reuse a data directory (built local models)")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}; "
          f"server code: {Path.cwd()}")
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(api_key="sk-up").running() as fake:
        work = Path(tmp)
        config = merge(openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o"}, region="eu"),
                       {"policy": {"dir": str(ROOT / "policies")}})
        (work / "appliance.toml").write_text(to_toml(config))
        data = args.data_dir or work / "data"
        env = {UPSTREAM_KEY_ENV: "sk-up", "APPLIANCE_ADMIN_KEY": ADMIN}
        with serve_subprocess(work / "appliance.toml", data, env=env, timeout_s=900) as server:
            admin = {"Authorization": f"Bearer {ADMIN}"}
            httpx.post(server.url + "/admin/apps", headers=admin, timeout=60, json={
                "tenant": "docs", "name": "contract-archive",
                "purpose": "Reviews employment contracts and HR correspondence",
                "annex_iii": "employment"}).raise_for_status()
            key = create_key(data, tenant="docs", user="legal", application="contract-archive")
            for size in (int(s) for s in args.sizes.split(",")):
                doc = archive(size, seed=size)
                body = {"model": "gpt-4o", "messages": [
                    {"role": "system", "content": "You summarise archives."},
                    {"role": "user", "content": doc.text + "\n\nSummarise the archive above."}]}
                for _ in range(args.tries):
                    began = time.perf_counter()
                    r = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=900,
                                   headers={"Authorization": f"Bearer {key}"})
                    took = time.perf_counter() - began
                    message = "" if r.status_code == 200 else r.json()["error"]["message"][:120]
                    print(f"{len(doc.text.encode()) / 1000:7.1f} KB  HTTP {r.status_code}  "
                          f"{took:6.2f} s  {message}", flush=True)
            lines = [line for line in server.log().splitlines() if "appliance.pii" in line]
    print("server log, PII lines:" if lines else "server log: nothing about PII")
    for line in lines[-20:]:
        print("  " + line)


if __name__ == "__main__":
    main()
