"""Tenants through the full pipeline: one tenant's placeholders never restore into
another's answer, a caller's own placeholder-shaped text is never taken for a value, and
another tenant's stored responses are 404 (every stage on, real server process)."""

from __future__ import annotations

import pytest
from openai import NotFoundError, OpenAI

from tests.e2e.conftest import FullAppliance


def _client(full: FullAppliance, tenant: str) -> OpenAI:
    key = full.key(tenant=tenant, user="user-" + tenant, department="engineering")
    return OpenAI(base_url=full.base_url, api_key=key, max_retries=0)


def _ask(client: OpenAI, text: str) -> str:
    answer = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}])
    return answer.choices[0].message.content or ""


def test_placeholders_never_cross_tenants(full_appliance: FullAppliance) -> None:
    a, b = _client(full_appliance, "iso-a"), _client(full_appliance, "iso-b")
    email = "anna.schmidt.iso@example.com"
    assert _ask(a, f"Write to {email} today") == f"echo: Write to {email} today"
    assert "<EMAIL_ADDRESS_1>" in str(full_appliance.openai.requests[-1].json())
    # Tenant B names the placeholder tenant A's request was given: it stays text.
    answer = _ask(b, "What is <EMAIL_ADDRESS_1> about?")
    assert email not in answer and "<EMAIL_ADDRESS_1>" in answer


def test_a_callers_literal_placeholder_is_not_taken_for_a_value(
    full_appliance: FullAppliance,
) -> None:
    client = _client(full_appliance, "iso-c")
    text = "Template <EMAIL_ADDRESS_1> goes to carl.iso@example.org"
    assert _ask(client, text) == f"echo: {text}"
    sent = str(full_appliance.openai.requests[-1].json())
    assert "carl.iso@example.org" not in sent and "<EMAIL_ADDRESS_2>" in sent


def test_stored_responses_are_the_tenants_own(full_appliance: FullAppliance) -> None:
    a, b = _client(full_appliance, "iso-a"), _client(full_appliance, "iso-b")
    stored = a.responses.create(model="gpt-4o", input="keep this for tenant a")
    assert a.responses.retrieve(stored.id).id == stored.id
    with pytest.raises(NotFoundError):
        b.responses.retrieve(stored.id)
    with pytest.raises(NotFoundError):
        b.responses.input_items.list(stored.id)
    with pytest.raises(NotFoundError):
        b.responses.delete(stored.id)
    assert a.responses.retrieve(stored.id).id == stored.id  # B's delete did nothing
