"""The bar: the default config serves local-chat and local-embed to the openai SDK."""

from __future__ import annotations

import base64

import numpy as np
import openai
import pytest

from appliance.testing.harness import PASS_THROUGH, merge
from appliance.testing.models import TestModels


@pytest.fixture
def local_models(test_models: TestModels) -> dict[str, object]:
    return {"providers": {"local": {"models_dir": str(test_models.models_dir)}}}


@pytest.mark.parametrize("stages", ["pass-through", "all stages"])
async def test_openai_sdk_gets_streamed_chat_and_embeddings(
    start_appliance, local_models, stages: str  # type: ignore[no-untyped-def]
) -> None:
    parts = [local_models, PASS_THROUGH] if stages == "pass-through" else [local_models]
    app = await start_appliance(merge(*parts))
    client = openai.AsyncOpenAI(base_url=app.base_url, api_key=app.key, max_retries=0)
    try:
        models = {m.id: m for m in (await client.models.list()).data}
        assert models["local-chat"].owned_by == "local"
        assert models["local-embed"].owned_by == "local"
        # A newcomer reads here that local-chat's answers are gibberish, and why.
        assert "random weights" in (models["local-chat"].model_extra or {})["description"]

        stream = await client.chat.completions.create(
            model="local-chat", stream=True, max_tokens=16, temperature=0,
            messages=[{"role": "user", "content": "Tell me about the weather."}],
            stream_options={"include_usage": True},
        )
        pieces: list[str] = []
        usage = None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            if chunk.usage:
                usage = chunk.usage
        assert len(pieces) > 1
        assert usage is not None and 0 < usage.completion_tokens <= 16

        whole = await client.chat.completions.create(
            model="local-chat", max_tokens=16, temperature=0,
            messages=[{"role": "user", "content": "Tell me about the weather."}],
        )
        if stages == "pass-through":  # output stages may add a disclosure or mask text
            assert whole.choices[0].message.content == "".join(pieces)

        emb = await client.embeddings.create(model="local-embed", input=["hello", "good day"])
        assert len(emb.data) == 2 and len(emb.data[0].embedding) == 384
        # The SDK asks for base64 by default; ask for floats too and compare.
        floats = await client.embeddings.create(
            model="local-embed", input=["hello", "good day"], encoding_format="float"
        )
        np.testing.assert_allclose(emb.data[0].embedding, floats.data[0].embedding, atol=1e-6)

        done = await client.completions.create(model="local-chat", prompt="Once", max_tokens=5)
        assert done.usage is not None and done.usage.completion_tokens <= 5
    finally:
        await client.close()


async def test_limits_are_4xx_through_the_server(start_appliance, local_models) -> None:  # type: ignore[no-untyped-def]
    app = await start_appliance(merge(local_models, PASS_THROUGH))
    client = openai.AsyncOpenAI(base_url=app.base_url, api_key=app.key, max_retries=0)
    try:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(
                model="local-chat", max_tokens=100_000,
                messages=[{"role": "user", "content": "hi"}],
            )
        assert info.value.status_code == 400
        with pytest.raises(openai.BadRequestError):
            await client.embeddings.create(model="local-chat", input="hi")
        # The test model has no beginning-of-text token: an empty prompt has nothing to
        # continue (found by Schemathesis as a 502).
        with pytest.raises(openai.BadRequestError) as empty:
            await client.completions.create(model="local-chat", prompt=["Once", ""])
        assert "prompt 1 is empty" in str(empty.value)
    finally:
        await client.close()


def test_base64_roundtrip_sanity() -> None:
    vec = np.arange(4, dtype=np.float32)
    assert np.frombuffer(base64.b64decode(base64.b64encode(vec.tobytes())), np.float32).tolist() == [0, 1, 2, 3]


async def test_a_policy_cap_never_exceeds_what_the_model_can_produce(
    start_appliance, local_models  # type: ignore[no-untyped-def]
) -> None:
    """The shipped policy caps answers at 8,192 tokens (512 for the trial tenant); a caller
    who sets no max_tokens must get an answer from a 2,048-token model, not a 400 about a
    cap it never asked for: the README's first request."""
    app = await start_appliance(local_models)
    client = openai.AsyncOpenAI(base_url=app.base_url, api_key=app.key, max_retries=0)
    trial = openai.AsyncOpenAI(
        base_url=app.base_url, api_key=app.new_key(tenant="trial"), max_retries=0
    )
    try:
        hello = await client.chat.completions.create(
            model="local-chat", messages=[{"role": "user", "content": "Hello"}]
        )
        assert hello.usage is not None
        assert hello.usage.prompt_tokens + hello.usage.completion_tokens <= 2048
        # The trial tenant's 512-token cap binds unless the prompt leaves less room.
        long_prompt = "Please summarise the meeting notes about the quarterly plan. " * 30
        done = await trial.completions.create(model="local-chat", prompt=long_prompt)
        assert done.usage is not None
        assert done.usage.completion_tokens <= 512
        assert done.usage.prompt_tokens + done.usage.completion_tokens <= 2048
        # A cap the caller did ask for is still the caller's: too large is a 400.
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(
                model="local-chat", max_tokens=4000,
                messages=[{"role": "user", "content": "Hello"}],
            )
    finally:
        await client.close()
        await trial.close()
