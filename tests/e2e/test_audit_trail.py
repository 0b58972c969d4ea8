"""The audit trail of real traffic: every request leaves a record the CLI can find, a
high-risk use from a registered application stores its payload encrypted, and the log
verifies while the server keeps running."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
from openai import OpenAI

from tests.e2e.conftest import ADMIN_KEY, FullAppliance


def appliance(full: FullAppliance, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args, "--config", str(full.config_path),
         "--data-dir", str(full.data_dir)],
        capture_output=True, text=True, timeout=300,
    )


def test_high_risk_app_request_is_recorded_with_encrypted_payload(full_appliance: FullAppliance) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    app = httpx.post(full_appliance.url + "/admin/apps", headers=admin, timeout=60, json={
        "tenant": "acme", "name": "cv-screener",
        "purpose": "Ranks job applicants' CVs for recruiters", "annex_iii": "employment",
    })
    assert app.status_code == 201, app.text
    assert app.json()["risk_class"] == "high"
    key = httpx.post(full_appliance.url + "/admin/keys", headers=admin, json={
        "tenant": "acme", "user": "hr-bot", "department": "hr", "application": "cv-screener",
    }).json()["key"]
    client = OpenAI(base_url=full_appliance.base_url, api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-eu",
        messages=[{"role": "user", "content": "Rank these three applicants' CVs for the engineer job"}],
    )
    request_id = raw.headers["x-request-id"]
    assert raw.headers["x-appliance-risk"].startswith("high")

    found = appliance(full_appliance, "audit", "search", "--request-id", request_id, "--json")
    assert found.returncode == 0, found.stderr
    record = json.loads(found.stdout.splitlines()[0])
    assert record["request_id"] == request_id
    assert record["decision"] == "allow" and record["status"] == 200
    assert "Rank these three" not in found.stdout  # payloads stay encrypted by default

    decrypted = appliance(full_appliance, "audit", "search", "--request-id", request_id, "--json",
                          "--decrypt-payloads", "--reason", "e2e test of Art. 12 logging")
    assert decrypted.returncode == 0, decrypted.stderr
    assert "Rank these three" in decrypted.stdout

    verified = appliance(full_appliance, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_denied_and_unauthenticated_requests_are_recorded(full_appliance: FullAppliance) -> None:
    r = httpx.post(full_appliance.base_url + "/chat/completions",
                   json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 401
    request_id = r.headers["x-request-id"]
    found = appliance(full_appliance, "audit", "search", "--request-id", request_id, "--json")
    record = json.loads(found.stdout.splitlines()[0])
    assert record["status"] == 401 and record["decision"] == "deny"
