"""``[console] listen``: the console on a listener of its own (an admin network), and
nothing of it on the API port."""

from __future__ import annotations

from pathlib import Path

from appliance.testing.console import ConsoleClient, create_users
from appliance.testing.fakes import FakeOpenAI
from tests.conftest import StartAppliance
from tests.console.conftest import console_config, copy_policies
from appliance.testing.engines import free_port


async def test_the_console_on_its_own_listener(start_appliance: StartAppliance, fake_openai: FakeOpenAI,
                                              tmp_path: Path) -> None:
    port = free_port()
    running = await start_appliance(console_config(fake_openai, copy_policies(tmp_path),
                                                   listen=f"127.0.0.1:{port}"))
    create_users(None, running.data_dir)
    async with ConsoleClient(running.url) as api_port:
        status, _, _ = await api_port.get("/console/login", allow_redirects=False)
        assert status == 404  # not on the API port
    async with ConsoleClient(f"http://127.0.0.1:{port}") as console:
        status, html, _ = await console.get("/", allow_redirects=True)
        assert status == 200 and 'name="password"' in html  # sent to sign in
        assert await console.sign_in("aud_auditor") == 200
        status, html, _ = await console.get("/console/audit")
        assert status == 200 and 'id="records"' in html
