"""Turning an OpenAI request into the token ids a local model reads.

Chat requests go through the manifest's Jinja2 chat template (the Hugging Face
convention: ``messages``, ``add_generation_prompt``, ``bos_token``, ``eos_token``),
rendered in a sandbox because templates come from model files. Content parts are
flattened to text; images cannot be read by a text model and are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import StrictUndefined
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from appliance.errors import InvalidRequest, UnsupportedOperation

#: Used when a model ships no chat template.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def _raise(message: str) -> None:
    raise TemplateError(message)


def compile_chat_template(source: str | None) -> Callable[..., str]:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined
    )
    env.globals["raise_exception"] = _raise
    template = env.from_string(source or FALLBACK_TEMPLATE)
    return template.render


def message_text(content: Any, *, param: str) -> str:
    """Text of a message's content: a string, a list of text parts, or nothing."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind in ("image_url", "input_audio", "file"):
                raise UnsupportedOperation(
                    f"local text models cannot read {kind} content", param=param
                )
            else:
                raise InvalidRequest(f"unknown content part type {kind!r}", param=param)
        return "".join(texts)
    raise InvalidRequest("message content must be a string or a list of parts", param=param)


def render_chat(
    render: Callable[..., str],
    messages: list[dict[str, Any]],
    *,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty list", param="messages")
    plain: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg:
            raise InvalidRequest("each message needs a role", param=f"messages[{i}]")
        text = message_text(msg.get("content"), param=f"messages[{i}].content")
        role = "system" if msg["role"] == "developer" else str(msg["role"])
        plain.append({"role": role, "content": text})
    try:
        return render(
            messages=plain, add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token
        )
    except TemplateError as e:
        # Templates reject some role orders; the message is the template's, not the prompt.
        raise InvalidRequest(f"the model's chat template refused the messages: {e}",
                             param="messages") from None
