"""Every compliance stage on, driven by the real SDKs: what a user of the defaults gets."""

from __future__ import annotations

import pytest
from anthropic import Anthropic
from openai import OpenAI, PermissionDeniedError

from tests.e2e.conftest import FullAppliance


@pytest.fixture
def client(full_appliance: FullAppliance) -> OpenAI:
    key = full_appliance.key(tenant="acme", user="alice", department="engineering")
    return OpenAI(base_url=full_appliance.base_url, api_key=key, max_retries=0)


def _last_upstream_text(full: FullAppliance) -> str:
    return str(full.openai.requests[-1].json()["messages"][-1]["content"])


def test_pii_masked_upstream_and_restored(client: OpenAI, full_appliance: FullAppliance) -> None:
    text = "Please email john.smith@example.com about the invoice"
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}]
    )
    sent = _last_upstream_text(full_appliance)
    assert "john.smith@example.com" not in sent and "<EMAIL_ADDRESS_1>" in sent
    assert raw.parse().choices[0].message.content == f"echo: {text}"
    assert raw.headers["x-appliance-decision"] == "allow"
    assert raw.headers["x-appliance-risk"]


def test_streaming_restores_placeholders(client: OpenAI, full_appliance: FullAppliance) -> None:
    text = "Call Maria Schneider at +49 30 12345678 today"
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}],
        stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"echo: {text}"
    assert chunks[-1].usage is not None
    assert "Maria Schneider" not in _last_upstream_text(full_appliance)


def test_secret_is_blocked_and_never_forwarded(client: OpenAI, full_appliance: FullAppliance) -> None:
    before = len(full_appliance.openai.requests)
    secret = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"
    with pytest.raises(PermissionDeniedError) as e:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"my key is {secret}"}]
        )
    assert secret not in str(e.value.body)
    assert len(full_appliance.openai.requests) == before


def test_local_models_stream_and_embed(client: OpenAI) -> None:
    ids = {m.id: m.owned_by for m in client.models.list()}
    assert ids["local-chat"] == "local" and ids["local-embed"] == "local"
    stream = client.chat.completions.create(
        model="local-chat", messages=[{"role": "user", "content": "hello"}],
        max_tokens=8, stream=True,
    )
    assert sum(1 for c in stream if c.choices and c.choices[0].delta.content) >= 1
    emb = client.embeddings.create(model="local-embed", input=["a cat", "a dog"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 384


def test_anthropic_sdk_through_every_stage(full_appliance: FullAppliance) -> None:
    key = full_appliance.key(tenant="acme", user="bob", department="engineering")
    client = Anthropic(base_url=full_appliance.url, api_key=key, max_retries=0)
    msg = client.messages.create(
        model="claude", max_tokens=50,
        messages=[{"role": "user", "content": "Write to anna.weber@example.org please"}],
    )
    assert msg.content[0].text == "echo: Write to anna.weber@example.org please"  # type: ignore[union-attr]
    sent = full_appliance.anthropic.requests[-1].json()["messages"][0]["content"]
    assert "anna.weber@example.org" not in str(sent)
