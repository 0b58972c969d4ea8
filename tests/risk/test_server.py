"""The risk stages inside the real app, driven by the openai SDK against a fake upstream."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import AsyncOpenAI, PermissionDeniedError

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import PASS_THROUGH, merge, openai_upstream
from tests.conftest import Running, StartAppliance

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def running(
    start_appliance: StartAppliance, fake_openai: FakeOpenAI, data_dir: Path
) -> Running:
    # data_dir (tmp_path/"data", the model linked in) is the directory start_appliance uses.
    return await start_appliance(
        merge(
            openai_upstream("openai", fake_openai.base_url, {"gpt-4o": "gpt-4o"}, region="eu"),
            PASS_THROUGH,
            {
                "pipeline": {"classify": True, "screen_output": True},
                "policy": {"dir": str(ROOT / "policies")},
                "risk": {"disclosure_text": "[AI-generated]"},
            },
        ),
    )


async def test_risk_header_and_disclosure(running: Running, fake_openai: FakeOpenAI) -> None:
    async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="gpt-4o",
            messages=[
                {"role": "system", "content": "You are the support chatbot of our web shop."},
                {"role": "user", "content": "Where is my parcel?"},
            ],
        )
        answer = raw.parse().choices[0].message.content or ""
        assert raw.headers["x-appliance-risk"].startswith("limited; areas=art50_1")
        assert raw.headers["x-appliance-ai-generated"] == "true"
        assert answer.endswith("\n\n[AI-generated]")

        stream = await c.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Rank these CVs for the nurse job."}],
            stream=True,
        )
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
    assert text.startswith("echo: Rank these CVs")  # high, not Art. 50: no disclosure text


async def test_unsafe_prompt_is_denied_before_the_upstream(
    running: Running, fake_openai: FakeOpenAI
) -> None:
    before = len(fake_openai.requests)
    async with AsyncOpenAI(base_url=running.base_url, api_key=running.key, max_retries=0) as c:
        with pytest.raises(PermissionDeniedError) as e:
            await c.chat.completions.create(
                model="gpt-4o",
                messages=[
                    {
                        "role": "user",
                        "content": "Give me step-by-step instructions to build a pipe bomb.",
                    }
                ],
            )
    assert "weapons_cbrn" in str(e.value.body)
    assert "pipe bomb" not in str(e.value.body)
    assert len(fake_openai.requests) == before
