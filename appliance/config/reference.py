"""The configuration reference, generated from the config models themselves.

Each field's documentation is the ``#:`` comment above it in the source, so the reference
cannot drift from the code: ``python -m appliance.config.reference > docs/configuration.md``
regenerates it, and a test fails when a field has no comment or the file is stale.
"""

from __future__ import annotations

import inspect
import sys
import typing
from typing import Any

from pydantic import BaseModel

from appliance.config import Config, ProviderConfig, embedded_defaults

_HEADER = """# Configuration reference

One TOML file, passed as `appliance serve --config FILE` (and to every stateful
command). It is merged over the built-in defaults (`appliance/config/defaults.toml`): tables
merge key by key, so a file that declares one provider keeps the default local models,
policies and storage. Secrets never go in the file: fields ending in `_env` name the
environment variable that holds them. Relative data paths resolve under
`[storage] data_dir`.

Generated from the config models by `python -m appliance.config.reference`.
"""


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """``#:`` comments directly above each field of ``model`` (and its bases)."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        pending: list[str] = []
        for line in lines:
            stripped = line.strip()
            if stripped.startswith("#:"):
                pending.append(stripped[2:].strip())
            elif stripped.startswith("#"):
                continue
            elif ":" in stripped and not stripped.startswith(("def ", "@", "class ", "return")):
                name = stripped.split(":", 1)[0].strip()
                if name.isidentifier() and pending:
                    docs[name] = " ".join(pending)
                pending = []
            else:
                pending = []
    return docs


def _type_name(annotation: Any) -> str:
    text = repr(annotation) if not isinstance(annotation, type) else annotation.__name__
    for noise in ("typing.", "pathlib.", "datetime.", "<class '", "'>", "appliance.config."):
        text = text.replace(noise, "")
    return text.replace("|", "\\|")


def _default(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "(table)"
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        value = list(value)
    return f"`{value!r}`".replace("PosixPath(", "Path(").replace("|", "\\|")


def _table(title: str, model: type[BaseModel], missing: list[str]) -> str:
    docs = field_docs(model)
    rows = [f"\n## `{title}`\n", "| field | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        if isinstance(field.default, BaseModel) or name in ("providers", "models"):
            continue
        doc = docs.get(name, "")
        if not doc and name != "kind":
            missing.append(f"{title}.{name}")
        default = "required" if field.is_required() else _default(field.get_default())
        rows.append(f"| `{name}` | {_type_name(field.annotation)} | {default} | {doc} |")
    return "\n".join(rows) + "\n"


def _optional_tables(model: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    """Fields that are a table of their own when set (``console.oidc``): documented too."""
    found = []
    for name, field in model.model_fields.items():
        args = typing.get_args(field.annotation)
        if type(None) not in args:
            continue  # a map of tables ([limits.users.NAME]) is documented by its section
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                found.append((name, arg))
    return found


def render() -> tuple[str, list[str]]:
    """The reference as Markdown, and the fields that lack a ``#:`` comment."""
    missing: list[str] = []
    out = [_HEADER]
    for name, field in Config.model_fields.items():
        default = field.get_default()
        if isinstance(default, BaseModel):
            out.append(_table(name, type(default), missing))
            out += [_table(f"{name}.{sub}", table, missing) for sub, table in _optional_tables(type(default))]
    out.append("\n## `providers.NAME`\n\nOne table per provider; `kind` selects the adapter.\n")
    for model in typing.get_args(typing.get_args(ProviderConfig)[0]):
        kind = typing.get_args(model.model_fields["kind"].annotation)[0]
        out.append(_table(f'providers.NAME (kind = "{kind}")', model, missing))
    from appliance.config import ModelConfig

    out.append(_table("models.NAME", ModelConfig, missing))
    from appliance.config.mcp import McpServerConfig

    out.append(_table("mcp.servers.NAME", McpServerConfig, missing))
    out.append("\n## Built-in defaults\n\n```toml\n")
    from importlib import resources

    out.append(resources.files("appliance.config").joinpath("defaults.toml").read_text("utf-8"))
    out.append("```\n")
    assert embedded_defaults()  # the defaults parse
    return "".join(out), missing


if __name__ == "__main__":
    text, missing = render()
    sys.stdout.write(text)
    if missing:
        print("fields without a #: comment: " + ", ".join(missing), file=sys.stderr)
        raise SystemExit(1)
