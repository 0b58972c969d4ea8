"""Through the real app: a policy denial is HTTP 403 in the OpenAI error format with the
reasons; an allowed request goes upstream with the obligations applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import PASS_THROUGH, merge, openai_upstream
from tests.conftest import StartAppliance
from tests.policy.conftest import SHIPPED


def _config(fake: FakeOpenAI) -> dict[str, Any]:
    return merge(
        openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o"}, region="eu"),
        PASS_THROUGH,
        {"pipeline": {"decide": True}, "policy": {"dir": str(SHIPPED)}},
    )


async def test_denied_request_is_403_with_reasons(start_appliance: StartAppliance, fake_openai: FakeOpenAI) -> None:
    app = await start_appliance(_config(fake_openai), key_kw={"department": "interns"})
    client = openai.AsyncOpenAI(api_key=app.key, base_url=app.base_url, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as err:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 403
    assert "model gpt-4o is not granted" in str(err.value)
    await client.close()


async def test_allowed_request_passes(start_appliance: StartAppliance, fake_openai: FakeOpenAI) -> None:
    app = await start_appliance(_config(fake_openai), key_kw={"department": "engineering"})
    client = openai.AsyncOpenAI(api_key=app.key, base_url=app.base_url, max_retries=0)
    out = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content is not None
    await client.close()


async def test_explain_a_denied_request_from_the_audit_log(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI
) -> None:
    import asyncio

    from appliance.policy.explain import explain
    from appliance.policy.source import load_source

    cfg = merge(_config(fake_openai), {"pipeline": {"record": True}})
    app = await start_appliance(cfg, key_kw={"department": "interns"})
    client = openai.AsyncOpenAI(api_key=app.key, base_url=app.base_url, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as err:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    await client.close()
    request_id = err.value.response.headers["x-request-id"]
    text = None
    for _ in range(50):  # the record of a denial may land just after the 403 is sent
        text = await asyncio.to_thread(explain, request_id, app.config, load_source(SHIPPED))
        if text is not None:
            break
        await asyncio.sleep(0.1)
    assert text is not None
    assert "decision: deny" in text
    assert "access_model: Model access by department and role" in text


async def test_data_edit_applies_to_the_running_server(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI, policy_dir: Path
) -> None:
    import asyncio
    import os

    cfg = merge(_config(fake_openai), {"policy": {"dir": str(policy_dir), "reload_interval_s": 0.05}})
    app = await start_appliance(cfg, key_kw={"department": "sales"})
    client = openai.AsyncOpenAI(api_key=app.key, base_url=app.base_url, max_retries=0)
    msgs: Any = [{"role": "user", "content": "hi"}]
    await client.chat.completions.create(model="gpt-4o", messages=msgs)
    access = policy_dir / "data" / "access.yaml"
    access.write_text(
        access.read_text().replace("  departments:\n", '  departments:\n    sales:\n      models: ["local-*"]\n      providers: ["local"]\n')
    )
    st = access.stat()
    os.utime(access, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    denied = False
    for _ in range(100):
        try:
            await client.chat.completions.create(model="gpt-4o", messages=msgs)
        except openai.PermissionDeniedError:
            denied = True
            break
        await asyncio.sleep(0.05)
    await client.close()
    assert denied
