"""The price table: data in a YAML file, looked up per provider and model.

Prices are per ``per_tokens`` tokens (1M by default) in the table's currency, converted
to USD with ``usd_per_unit``. A model may have volume tiers: the tenant's month-to-date
tokens on that model decide which tier a request's tokens fall into (a request that
straddles a tier boundary is split). Local models carry an internal price (the cost of
running the on-premises hardware), so their use shows up in budgets too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from appliance.errors import ConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Tier(_Frozen):
    #: Upper end of the tier in month-to-date tokens (prompt + completion); None: no end.
    up_to_tokens: int | None = Field(default=None, gt=0)
    input: float = Field(ge=0)
    output: float = Field(default=0.0, ge=0)


class ModelPrice(_Frozen):
    input: float | None = Field(default=None, ge=0)
    output: float | None = Field(default=None, ge=0)
    tiers: tuple[Tier, ...] = ()

    @model_validator(mode="after")
    def _one_form(self) -> ModelPrice:
        if self.tiers and self.input is not None:
            raise ValueError("give either input/output or tiers, not both")
        if not self.tiers and self.input is None:
            raise ValueError("give input (and output) prices, or tiers")
        ends = [t.up_to_tokens for t in self.tiers]
        if ends and (ends[-1] is not None or any(e is None for e in ends[:-1])):
            raise ValueError("every tier but the last needs up_to_tokens; the last has none")
        bounded = [e for e in ends if e is not None]
        if bounded != sorted(set(bounded)):
            raise ValueError("tier up_to_tokens must increase")
        return self

    def bands(self) -> tuple[Tier, ...]:
        if self.tiers:
            return self.tiers
        return (Tier(input=self.input or 0.0, output=self.output or 0.0),)


class PriceFile(_Frozen):
    currency: str = "USD"
    #: USD per unit of ``currency`` (1.0 for USD).
    usd_per_unit: float = Field(default=1.0, gt=0)
    #: The token count the prices refer to (1000 or 1000000).
    per_tokens: int = Field(default=1_000_000, gt=0)
    #: provider (name in the config, or its kind) -> model (or prefix, or "*") -> price.
    providers: dict[str, dict[str, ModelPrice]] = {}
    #: Price of models found nowhere in the table (None: such requests cost nothing).
    default: ModelPrice | None = None


@dataclass(frozen=True, slots=True)
class Quote:
    """The price that applies to one model, and where in the table it was found."""

    price: ModelPrice
    entry: str
    table: PriceFile

    def cost_usd(self, prompt_tokens: int, completion_tokens: int, month_tokens_before: int = 0) -> float:
        """List cost of a request, tiers applied against the month-to-date volume."""
        total = prompt_tokens + completion_tokens
        bands = self.price.bands()
        if total <= 0:
            return 0.0
        cost, start, lower = 0.0, month_tokens_before, 0
        end = month_tokens_before + total
        for band in bands:
            upper = band.up_to_tokens
            lo = max(start, lower)
            hi = end if upper is None else min(end, upper)
            if hi > lo:
                share = (hi - lo) / total
                cost += share * (prompt_tokens * band.input + completion_tokens * band.output)
            if upper is not None:
                lower = upper
        return cost / self.table.per_tokens * self.table.usd_per_unit

    @property
    def tiered(self) -> bool:
        return len(self.price.bands()) > 1


class PriceTable:
    def __init__(self, data: PriceFile) -> None:
        self.data = data

    @classmethod
    def load(cls, path: Path | None) -> PriceTable:
        return cls(load_checked(PriceFile, path, "prices.yaml"))

    def quote(self, providers: Iterable[str], models: Iterable[str]) -> Quote | None:
        """The price of the first model name found under the first provider that has it.

        Model names match exactly, else by the longest prefix (``gpt-4o-2024-08-06``
        is priced as ``gpt-4o``), else the provider's ``"*"`` entry.
        """
        names = [m for m in models if m]
        for provider in providers:
            table = self.data.providers.get(provider)
            if not table:
                continue
            found = _match(table, names)
            if found is not None:
                return Quote(table[found], f"{provider}/{found}", self.data)
        if self.data.default is not None:
            return Quote(self.data.default, "default", self.data)
        return None


def _match(table: Mapping[str, ModelPrice], names: list[str]) -> str | None:
    for name in names:
        if name in table:
            return name
    for name in names:
        prefixes = [k for k in table if k != "*" and name.startswith(k)]
        if prefixes:
            return max(prefixes, key=len)
    return "*" if "*" in table else None


def _read_yaml(path: Path | None, builtin: str) -> Any:
    try:
        if path is None:
            text = resources.files("appliance.metering").joinpath("data", builtin).read_text("utf-8")
            source = f"built-in {builtin}"
        else:
            text = Path(path).read_text("utf-8")
            source = str(path)
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML: {e}") from None


def load_checked(model: type[BaseModel], path: Path | None, builtin: str) -> Any:
    """Validate a YAML data file, naming the file and the path of every mistake."""
    raw = _read_yaml(path, builtin)
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        where = str(path) if path else f"built-in {builtin}"
        lines = [f"invalid data in {where}:"]
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError("\n".join(lines)) from None
