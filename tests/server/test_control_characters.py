"""CR, LF and other control characters in what a caller chooses (path, query, model,
user, tenant and user names registered through the admin API, file names, JSON-RPC
methods, header values) never reach a log line or a response header unescaped: a real
server process at DEBUG level, its whole log read back."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.core.logline import OneLineFormatter, escape_controls
from appliance.server.access_log import json_line, logfmt
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import (
    PASS_THROUGH,
    UPSTREAM_KEY_ENV,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)
from appliance.testing.models import TestModels

MARK = "FORGED"
#: What a caller may put in a value: a new line that would start a forged log line, a
#: terminal escape, Unicode line separators, a NUL.
EVIL = f"\r\n{MARK} level=ERROR \x1b[2J\x1b]0;title\x07\u2028{MARK}\u0085\x00"
ADMIN = "admin-crlf-secret"
UPSTREAM = "sk-crlf-upstream"


def test_the_formatter_keeps_every_message_on_one_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.crlf")
    logger.addHandler(handler)
    try:
        logger.warning("model %s not found", EVIL)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed on %s", "x\ny")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"WARNING model {escape_controls(EVIL)} not found"
    assert "\x1b" not in stream.getvalue() and "\u2028" not in stream.getvalue()
    assert lines[1] == "ERROR failed on x\\u000ay" and lines[2].startswith("Traceback")


def test_access_log_values_escape_every_line_break() -> None:
    """orjson escapes C0 controls but leaves U+2028, U+2029 and C1 controls (NEL)."""
    fields = {"model": EVIL, "status": 200}
    line = logfmt(fields)
    assert line.splitlines() == [line] and "\x1b" not in line
    as_json = json_line(fields)
    assert as_json.splitlines() == [as_json]
    assert json.loads(as_json)["model"] == EVIL


@pytest.fixture
def server(tmp_path: Path, test_models: TestModels) -> Any:
    with FakeOpenAI(api_key=UPSTREAM).running() as fake:
        config = merge(openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o"}),
                       PASS_THROUGH,
                       {"providers": {"local": {"models_dir": str(test_models.models_dir)}}},
                       {"mcp": {"servers": {"crm": {
                           "url": fake.base_url.rsplit("/v1", 1)[0] + "/mcp", "timeout_s": 2}}}})
        path = tmp_path / "appliance.toml"
        path.write_text(to_toml(config))
        data = tmp_path / "data"
        env = {UPSTREAM_KEY_ENV: UPSTREAM, "APPLIANCE_ADMIN_KEY": ADMIN}
        with serve_subprocess(path, data, env=env, extra_args=("--log-level", "DEBUG")) as proc:
            yield proc, create_key(data, tenant="acme", user="alice")


def _requests(key: str) -> list[tuple[str, str, dict[str, Any]]]:
    auth = {"Authorization": f"Bearer {key}"}
    quoted = "%0D%0AFORGED%20level=ERROR%1B%5B2J"
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    return [
        ("GET", f"/v1/nowhere{quoted}", {}),
        ("GET", f"/v1/models?after={quoted}", {"headers": auth}),
        ("GET", f"/v1/models/gpt-4o{quoted}", {"headers": auth}),
        ("POST", f"/mcp/crm{quoted}", {"headers": auth, "json": {"jsonrpc": "2.0"}}),
        ("POST", "/mcp/crm", {"headers": auth, "json": {
            "jsonrpc": "2.0", "id": EVIL, "method": f"tools/call{EVIL}", "params": {}}}),
        ("POST", "/v1/chat/completions", {"headers": auth, "json": {**chat, "model": EVIL}}),
        ("POST", "/v1/chat/completions", {"headers": auth, "json": {
            **chat, "user": EVIL, "metadata": {EVIL: EVIL}}}),
        ("POST", "/v1/chat/completions", {"headers": {**auth, "x-request-id": "\x1b[2J"},
                                          "json": chat}),
        ("POST", "/v1/messages", {"headers": auth, "json": {
            "model": EVIL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}}),
        ("POST", "/v1/files", {"headers": auth, "data": {"purpose": "user_data"},
                               "files": {"file": (f"notes{EVIL}.txt", b"x")}}),
        ("GET", f"/v1/files/file-{quoted}", {"headers": auth}),
        ("POST", "/v1/responses", {"headers": auth, "json": {
            "model": "gpt-4o", "input": "hi", "previous_response_id": EVIL}}),
    ]


def test_nothing_a_caller_sends_forges_a_log_line_or_a_header(server: Any) -> None:
    proc, key = server
    with httpx.Client(base_url=proc.url, timeout=30) as http:
        # A tenant and user whose names carry control characters, then their key in use.
        r = http.post("/admin/keys", json={"tenant": f"t{EVIL}", "user": f"u{EVIL}"},
                      headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 201, r.text
        evil_key = r.json()["key"]
        for method, url, kw in [*_requests(key), *_requests(evil_key)]:
            try:
                r = http.request(method, url, **kw)
            except httpx.LocalProtocolError:
                continue  # the client itself refuses to send it: nothing reached the server
            assert r.status_code < 500, (method, url, r.text)
            for name, value in r.headers.items():
                assert MARK.lower() not in name.lower(), (url, name)
                assert not any(c in value for c in "\r\n\x1b\x00\u2028"), (url, name, value)
    proc.kill(15)
    log = proc.log_path.read_text("utf-8", "replace")
    assert "appliance.access" in log  # the access log was on, at DEBUG level
    for line in log.splitlines():
        assert not line.lstrip().startswith(MARK), f"a forged log line: {line!r}"
    for raw in ("\x1b", "\u2028", "\u0085", "\x00"):
        assert raw not in log, f"an unescaped control character {raw!r} in the log"
