"""The price table and plans: data files validated at load, costs computed from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import ConfigError
from appliance.config.limits import LimitsConfig
from appliance.metering.plans import Plans
from appliance.metering.prices import PriceTable

TABLE = PriceTable.load(None)


@pytest.mark.parametrize(
    ("providers", "models", "entry"),
    [
        (["openai"], ["gpt-4o-2024-08-06", "gpt-4o"], "openai/gpt-4o"),  # longest prefix
        (["openai"], ["gpt-4o-mini-2024-07-18"], "openai/gpt-4o-mini"),  # not gpt-4o
        (["azure-eu", "azure_openai"], ["gpt-4o"], "azure_openai/gpt-4o"),  # by provider kind
        (["local"], ["local-chat"], "local/*"),  # internal price of local models
        (["anthropic"], ["claude-3-5-sonnet-20241022"], "anthropic/claude-3-5-sonnet"),
        (["openai"], ["my-finetune"], None),  # unknown: not priced
    ],
)
def test_lookup(providers: list[str], models: list[str], entry: str | None) -> None:
    quote = TABLE.quote(providers, models)
    assert (quote.entry if quote else None) == entry


@pytest.mark.parametrize(
    ("prompt", "completion", "before", "usd"),
    [
        (1_000_000, 0, 0, 2.50),
        (0, 1_000_000, 0, 10.00),
        (1000, 500, 0, (1000 * 2.5 + 500 * 10) / 1e6),
        (1_000_000, 0, 600_000_000, 2.25),  # second tier
        # Half the tokens in each tier: priced half at each.
        (1_000_000, 0, 499_500_000, 0.5 * 2.5 + 0.5 * 2.25),
    ],
)
def test_cost_with_volume_tiers(prompt: int, completion: int, before: int, usd: float) -> None:
    quote = TABLE.quote(["openai"], ["gpt-4o"])
    assert quote is not None and quote.tiered
    assert quote.cost_usd(prompt, completion, before) == pytest.approx(usd)


def test_currency_and_unit(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("currency: EUR\nusd_per_unit: 1.10\nper_tokens: 1000\nproviders: {x: {m: {input: 1, output: 2}}}\n")
    quote = PriceTable.load(f).quote(["x"], ["m"])
    assert quote is not None
    assert quote.cost_usd(1000, 1000) == pytest.approx(3 * 1.10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("providers: {x: {m: {input: -1}}}", "greater than or equal to 0"),
        ("providers: {x: {m: {output: 1}}}", "give input"),
        ("providers: {x: {m: {tiers: [{input: 1}, {up_to_tokens: 5, input: 1}]}}}", "every tier but the last"),
        ("providers: [1, 2]", "providers"),
        ("a: [", "not valid YAML"),
    ],
)
def test_bad_price_files_are_refused_with_their_path(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "prices.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message) as e:
        PriceTable.load(f)
    assert str(f) in str(e.value)


def test_plans() -> None:
    config = LimitsConfig(default_plan="starter", tenants={"big": {"plan": "enterprise"}})  # type: ignore[arg-type]
    plans = Plans.load(None, config)
    assert plans.plan_name("acme") == "starter"
    big = plans.of("big")
    assert big is not None and big.discount == 0.15 and big.limits.rpm == 6000
    with pytest.raises(ConfigError, match="unknown plan"):
        Plans.load(None, LimitsConfig(default_plan="platinum"))
