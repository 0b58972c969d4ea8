"""A long document through every stage: a 200 KB English and German archive, with postal
addresses planted across the PII pool's cuts, reaches the provider with none of its
personal data and comes back to the caller restored."""

from __future__ import annotations

import httpx
from openai import OpenAI

from appliance.config.pii import PiiConfig
from appliance.testing.documents import archive, at_cuts
from tests.e2e.conftest import ADMIN_KEY, FullAppliance
from tests.pii.test_pieces import cuts_within_runs


def test_a_200_kb_archive_is_masked_whole_and_restored(full_appliance: FullAppliance) -> None:
    config = PiiConfig()  # the server's defaults: the same cuts
    doc = at_cuts(archive(200_000, seed=41, width=64, blank_lines=False, run_chars=10_000),
                  lambda text: cuts_within_runs(text, config))
    assert len(doc.at_cuts) >= 90
    # Generated contracts now and then read as high-risk to the risk classifier, and HR
    # correspondence names a religion now and then (only applications registered for
    # both may send those out): this test is about PII.
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    app = httpx.post(full_appliance.url + "/admin/apps", headers=admin, timeout=60, json={
        "tenant": "docs", "name": "contract-archive",
        "purpose": "Reviews employment contracts and HR correspondence", "annex_iii": "employment",
        "art9_basis": {"*": "employment"},
    })
    assert app.status_code == 201, app.text
    key = full_appliance.key(tenant="docs", user="legal", application="contract-archive")
    client = OpenAI(base_url=full_appliance.base_url, api_key=key, max_retries=0, timeout=600)

    answer = client.chat.completions.create(
        model="gpt-4o-eu", messages=[{"role": "user", "content": doc.text}])

    sent = str(full_appliance.openai.requests[-1].json()["messages"][-1]["content"])
    for planted in doc.at_cuts:
        for line in doc.text[planted.start:planted.end].split("\n"):
            assert line.strip() not in sent
    structured = [doc.text[p.start:p.end] for p in doc.planted
                  if p.entity_type in {"EMAIL_ADDRESS", "IBAN_CODE", "PHONE_NUMBER"}]
    assert structured and not [v for v in structured if v in sent]
    # The fake model echoes the redacted prompt word by word up to max_tokens (which the
    # policy caps): what comes back is the caller's own text, every placeholder restored.
    words = (answer.choices[0].message.content or "").split()
    assert len(words) > 8000 and words == f"echo: {doc.text}".split()[:len(words)]
