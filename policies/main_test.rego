# Unit tests of the default policies: every rule, both outcomes.
# Run with `appliance policy test` (or `opa test policies/`).
package appliance.main_test

import rego.v1

import data.appliance.main

base := {
	"principal": {"key_id": "key_1", "tenant": "acme", "user": "alice", "department": "engineering", "roles": ["developer"]},
	"request": {
		"route": "chat.completions", "model": "gpt-4o-mini", "requested_model": "gpt-4o-mini",
		"provider": "openai", "provider_kind": "openai", "provider_region": "eu",
		"token_estimate": 420, "max_tokens": 512, "stream": false, "tools": [],
	},
	"pii": {"scanned": true, "counts": {"PERSON": 1}, "types": ["PERSON"], "languages": ["en"]},
	"risk": {
		"assessed": true, "class": "minimal", "areas": [], "articles": [], "declared_class": null,
		"drift": false, "safety_flags": [], "safety_blocked": [],
	},
	"application": {"id": null},
	"time": {"now": "2026-11-25T14:03:00Z", "hour": 14, "weekday": "wednesday"},
}

# --- the decision as a whole -------------------------------------------------------

test_plain_request_allowed if {
	inp := base
	d := main.decision with input as inp
	d.allow
	d.reasons == []
	d.obligations.pii_actions == {"*": "mask"}
	d.obligations.restore_pii == true
}

test_empty_input_denied if {
	inp := {}
	d := main.decision with input as inp
	not d.allow
	count(d.reasons) > 0
}

# --- access_model / access_provider ------------------------------------------------

test_intern_external_model_denied if {
	inp := object.union(base, {"principal": object.union(base.principal, {"department": "interns"})})
	d := main.decision with input as inp
	not d.allow
	"access_model" in d.rules
}

test_intern_local_model_allowed if {
	inp := object.union(base, {
		"principal": object.union(base.principal, {"department": "interns"}),
		"request": object.union(base.request, {"model": "local-llama", "provider": "local", "provider_kind": "local", "provider_region": "on-premises"}),
	})
	d := main.decision with input as inp
	d.allow
}

test_role_grants_model_beyond_department if {
	inp := object.union(base, {"principal": object.union(base.principal, {"department": "interns", "roles": ["ai-admin"]})})
	d := main.decision with input as inp
	d.allow
}

test_intern_local_model_on_external_provider_denied if {
	inp := object.union(base, {
		"principal": object.union(base.principal, {"department": "interns"}),
		"request": object.union(base.request, {"model": "local-llama"}),
	})
	d := main.decision with input as inp
	not d.allow
	"access_provider" in d.rules
	not "access_model" in d.rules
}

test_unlisted_department_gets_default_grant if {
	inp := object.union(base, {"principal": object.union(base.principal, {"department": null})})
	d := main.decision with input as inp
	d.allow
}

# The "*" shortcut in `granted` means exactly what glob.match("*", null, name) means.
test_star_grant_is_the_glob_star if {
	every name in ["gpt-4.1", "anthropic.claude-3-5:v2", "eu/mistral-large", ""] {
		main.granted("*", name)
		glob.match("*", null, name)
	}
}

test_star_grant_needs_a_name if {
	not main.granted("*", null)
}

test_pattern_grant_matches_by_glob if {
	main.granted("local-*", "local-llama")
	not main.granted("local-*", "gpt-4o-mini")
}

# --- GDPR Art. 9 / Art. 44 ---------------------------------------------------------

test_health_data_to_us_provider_denied if {
	inp := object.union(base, {
		"pii": object.union(base.pii, {"counts": {"HEALTH": 1}, "types": ["HEALTH"]}),
		"request": object.union(base.request, {"provider_region": "us"}),
	})
	d := main.decision with input as inp
	not d.allow
	"gdpr_art9_art44_special_category_transfer" in d.rules
}

test_health_data_to_eu_provider_allowed_with_an_art9_basis if {
	inp := object.union(base, {
		"pii": object.union(base.pii, {"counts": {"HEALTH": 1}, "types": ["HEALTH"]}),
		"application": {"id": "care-bot", "art9_basis": {"HEALTH": "health_care"}},
	})
	d := main.decision with input as inp
	d.allow
	not "gdpr_art9_art44_special_category_transfer" in d.rules
}

test_ordinary_pii_to_us_provider_allowed if {
	inp := object.union(base, {"request": object.union(base.request, {"provider_region": "us"})})
	d := main.decision with input as inp
	d.allow
}

test_biometric_risk_area_to_us_provider_denied if {
	inp := object.union(base, {
		"risk": object.union(base.risk, {"areas": ["annex3_1"]}),
		"request": object.union(base.request, {"provider_region": "us"}),
	})
	d := main.decision with input as inp
	not d.allow
	"gdpr_art9_art44_special_category_transfer" in d.rules
}

test_health_safety_flag_to_us_provider_denied if {
	inp := object.union(base, {
		"risk": object.union(base.risk, {"safety_flags": ["health"]}),
		"request": object.union(base.request, {"provider_region": "us"}),
	})
	d := main.decision with input as inp
	not d.allow
}

# --- GDPR Art. 9(1)/(2): a legal basis before special categories leave ------------

health := object.union(base.pii, {"counts": {"HEALTH": 1, "PERSON": 1}, "types": ["HEALTH", "PERSON"], "special_categories": ["HEALTH"], "special_linked": ["HEALTH"]})

test_special_category_to_external_provider_denied if {
	inp := object.union(base, {"pii": health})
	d := main.decision with input as inp
	not d.allow
	"gdpr_art9_special_categories" in d.rules
	contains(concat(" ", d.reasons), "HEALTH")
}

test_special_category_to_local_model_allowed if {
	inp := object.union(base, {
		"pii": health,
		"request": object.union(base.request, {"model": "local-llama", "provider": "local", "provider_kind": "local", "provider_region": "on-premises"}),
	})
	d := main.decision with input as inp
	d.allow
	not "gdpr_art9_special_categories" in d.rules
}

test_special_category_without_provider_kind_denied if {
	inp := object.union(base, {"pii": health, "request": object.remove(base.request, ["provider_kind"])})
	d := main.decision with input as inp
	"gdpr_art9_special_categories" in d.rules
}

test_special_category_with_registered_basis_allowed if {
	inp := object.union(base, {"pii": health, "application": {"id": "care-bot", "art9_basis": {"HEALTH": "health_care"}}})
	d := main.decision with input as inp
	d.allow
}

test_wildcard_basis_covers_every_category if {
	pii := object.union(health, {"types": ["HEALTH", "PERSON", "RELIGION"], "special_categories": ["HEALTH", "RELIGION"]})
	inp := object.union(base, {"pii": pii, "application": {"id": "care-bot", "art9_basis": {"*": "explicit_consent"}}})
	d := main.decision with input as inp
	d.allow
}

test_basis_for_another_category_does_not_cover if {
	pii := object.union(health, {"types": ["HEALTH", "PERSON", "RELIGION"], "special_categories": ["HEALTH", "RELIGION"]})
	inp := object.union(base, {"pii": pii, "application": {"id": "care-bot", "art9_basis": {"HEALTH": "health_care"}}})
	d := main.decision with input as inp
	not d.allow
	"gdpr_art9_special_categories" in d.rules
	contains(concat(" ", d.reasons), "RELIGION")
	not contains(concat(" ", d.reasons), "HEALTH,")
}

test_unknown_basis_does_not_cover if {
	inp := object.union(base, {"pii": health, "application": {"id": "care-bot", "art9_basis": {"HEALTH": "legitimate_interest"}}})
	d := main.decision with input as inp
	not d.allow
}

apps_with_basis := {"hr-screening": {"tenant": "acme", "high_risk": true, "art9_basis": {"HEALTH": "employment"}}}

test_basis_in_policy_data_for_the_callers_tenant_allowed if {
	inp := object.union(base, {"pii": health, "application": {"id": "hr-screening", "art9_basis": {}}})
	d := main.decision with input as inp with data.applications as apps_with_basis
	d.allow
}

test_basis_in_policy_data_for_another_tenant_denied if {
	inp := object.union(base, {
		"principal": object.union(base.principal, {"tenant": "globex"}),
		"pii": health, "application": {"id": "hr-screening", "art9_basis": {}},
	})
	d := main.decision with input as inp with data.applications as apps_with_basis
	not d.allow
	"gdpr_art9_special_categories" in d.rules
}

test_recorded_input_without_special_field_still_decided if {
	inp := object.union(base, {"pii": object.union(base.pii, {"counts": {"SEX_LIFE": 1}, "types": ["SEX_LIFE"]})})
	d := main.decision with input as inp
	"gdpr_art9_special_categories" in d.rules
}

test_special_category_without_basis_rerouted_when_configured if {
	inp := object.union(base, {"pii": health})
	d := main.decision with input as inp with data.gdpr.reroute_model as "local-llama"
	d.allow
	d.obligations.force_local_model == "local-llama"
	"gdpr_art9_reroute_local" in d.rules
}

test_ordinary_pii_to_external_provider_not_art9 if {
	inp := base
	d := main.decision with input as inp
	not "gdpr_art9_special_categories" in d.rules
}

test_special_category_rerouted_to_local_model_when_configured if {
	inp := object.union(base, {
		"pii": object.union(base.pii, {"counts": {"RELIGION": 1}, "types": ["RELIGION"]}),
		"request": object.union(base.request, {"provider_region": "us"}),
	})
	d := main.decision with input as inp with data.gdpr.reroute_model as "local-llama"
	d.allow
	d.obligations.force_local_model == "local-llama"
	"gdpr_art44_reroute_local" in d.rules
}

test_no_reroute_without_special_category if {
	inp := object.union(base, {"request": object.union(base.request, {"provider_region": "us"})})
	d := main.decision with input as inp with data.gdpr.reroute_model as "local-llama"
	d.allow
	not d.obligations.force_local_model
}

# --- secrets -----------------------------------------------------------------------

test_request_with_api_key_denied if {
	inp := object.union(base, {"pii": object.union(base.pii, {"counts": {"API_KEY": 1, "PERSON": 1}, "types": ["API_KEY", "PERSON"]})})
	d := main.decision with input as inp
	not d.allow
	"secrets_blocked" in d.rules
}

test_request_without_secrets_allowed if {
	inp := object.union(base, {"pii": object.union(base.pii, {"counts": {"EMAIL_ADDRESS": 2}, "types": ["EMAIL_ADDRESS"]})})
	d := main.decision with input as inp
	d.allow
	not "secrets_blocked" in d.rules
}

# --- AI Act Art. 5 -----------------------------------------------------------------

test_prohibited_practice_denied if {
	inp := object.union(base, {
		"principal": object.union(base.principal, {"roles": ["ai-admin"]}),
		"risk": object.union(base.risk, {"class": "prohibited", "areas": ["social_scoring"]}),
	})
	d := main.decision with input as inp
	not d.allow
	"ai_act_art5_prohibited" in d.rules
}

test_minimal_risk_not_prohibited if {
	inp := base
	d := main.decision with input as inp
	not "ai_act_art5_prohibited" in d.rules
}

# --- AI Act Art. 6 / 26: high risk -------------------------------------------------
# data.ai_act.unregistered_high_risk: "allow" (shipped) serves unregistered high-risk use
# with registration_needed; "deny" (or no value, or a misspelt one) refuses it.

test_high_risk_without_application_allowed_registration_needed if {
	inp := object.union(base, {"risk": object.union(base.risk, {"class": "high", "areas": ["annex3_4"]})})
	d := main.decision with input as inp
	d.allow
	d.obligations.registration_needed == true
	"ai_act_art26_registration_needed" in d.rules
	not "ai_act_art26_high_risk_unregistered" in d.rules
	d.obligations.deny_streaming == true
	d.obligations.store_payloads == true
}

test_high_risk_without_application_denied_when_switch_is_deny if {
	inp := object.union(base, {"risk": object.union(base.risk, {"class": "high", "areas": ["annex3_4"]})})
	d := main.decision with input as inp with data.ai_act.unregistered_high_risk as "deny"
	not d.allow
	"ai_act_art26_high_risk_unregistered" in d.rules
	not "ai_act_art26_registration_needed" in d.rules
}

test_high_risk_without_application_denied_when_switch_is_misspelt if {
	inp := object.union(base, {"risk": object.union(base.risk, {"class": "high", "areas": ["annex3_4"]})})
	d := main.decision with input as inp with data.ai_act.unregistered_high_risk as "Allow"
	not d.allow
	"ai_act_art26_high_risk_unregistered" in d.rules
}

test_high_risk_from_other_tenants_application_needs_registration if {
	inp := object.union(base, {
		"principal": object.union(base.principal, {"tenant": "globex"}),
		"risk": object.union(base.risk, {"class": "high", "areas": ["annex3_4"]}),
		"application": {"id": "hr-screening"},
	})
	d := main.decision with input as inp
	d.allow
	"ai_act_art26_registration_needed" in d.rules
}

test_high_risk_from_other_tenants_application_denied_when_switch_is_deny if {
	inp := object.union(base, {
		"principal": object.union(base.principal, {"tenant": "globex"}),
		"risk": object.union(base.risk, {"class": "high", "areas": ["annex3_4"]}),
		"application": {"id": "hr-screening"},
	})
	d := main.decision with input as inp with data.ai_act.unregistered_high_risk as "deny"
	not d.allow
	"ai_act_art26_high_risk_unregistered" in d.rules
}

test_high_risk_from_registered_application_allowed_with_obligations if {
	inp := object.union(base, {
		"risk": object.union(base.risk, {"class": "high", "areas": ["annex3_4"]}),
		"application": {"id": "hr-screening"},
	})
	d := main.decision with input as inp with data.ai_act.unregistered_high_risk as "deny"
	d.allow
	d.obligations.deny_streaming == true
	d.obligations.store_payloads == true
	d.obligations.disclosure == true
	not d.obligations.registration_needed
	"high_risk_no_streaming" in d.rules
	"ai_act_art12_record_keeping" in d.rules
	not "ai_act_art26_registration_needed" in d.rules
}

test_high_risk_from_app_registered_in_registry_allowed if {
	inp := object.union(base, {
		"risk": object.union(base.risk, {"class": "high", "areas": ["annex3_4"], "declared_class": "high"}),
		"application": {"id": "cv-screener"},
	})
	d := main.decision with input as inp with data.ai_act.unregistered_high_risk as "deny"
	d.allow
	not "ai_act_art26_registration_needed" in d.rules
}

test_high_risk_from_app_declared_minimal_needs_registration if {
	inp := object.union(base, {
		"risk": object.union(base.risk, {"class": "high", "areas": ["annex3_4"], "declared_class": "minimal"}),
		"application": {"id": "marketing-copy"},
	})
	d := main.decision with input as inp
	d.allow
	d.obligations.registration_needed == true
	"ai_act_art26_registration_needed" in d.rules
}

test_high_risk_from_app_declared_minimal_denied_when_switch_is_deny if {
	inp := object.union(base, {
		"risk": object.union(base.risk, {"class": "high", "areas": ["annex3_4"], "declared_class": "minimal"}),
		"application": {"id": "marketing-copy"},
	})
	d := main.decision with input as inp with data.ai_act.unregistered_high_risk as "deny"
	not d.allow
	"ai_act_art26_high_risk_unregistered" in d.rules
}

test_minimal_risk_needs_no_registration if {
	inp := base
	d := main.decision with input as inp
	not d.obligations.registration_needed
	not "ai_act_art26_registration_needed" in d.rules
}

# --- tenant token caps -------------------------------------------------------------

test_trial_tenant_large_prompt_denied if {
	inp := object.union(base, {
		"principal": object.union(base.principal, {"tenant": "trial"}),
		"request": object.union(base.request, {"token_estimate": 5000}),
	})
	d := main.decision with input as inp
	not d.allow
	"tenant_prompt_cap" in d.rules
}

test_trial_tenant_small_prompt_allowed_and_output_capped if {
	inp := object.union(base, {
		"principal": object.union(base.principal, {"tenant": "trial"}),
		"request": object.union(base.request, {"token_estimate": 100, "max_tokens": 4000}),
	})
	d := main.decision with input as inp
	d.allow
	d.obligations.max_tokens == 512
}

test_output_cap_applies_without_requested_max_tokens if {
	inp := object.union(base, {"request": object.union(base.request, {"max_tokens": null})})
	d := main.decision with input as inp
	d.obligations.max_tokens == 8192
	"tenant_output_cap" in d.rules
}

test_smaller_requested_max_tokens_kept if {
	inp := object.union(base, {"request": object.union(base.request, {"max_tokens": 100})})
	d := main.decision with input as inp
	d.obligations.max_tokens == 100
}

test_default_tenant_large_prompt_allowed if {
	inp := object.union(base, {"request": object.union(base.request, {"token_estimate": 5000})})
	d := main.decision with input as inp
	d.allow
}

# --- obligations -------------------------------------------------------------------

test_limited_risk_requires_disclosure if {
	inp := object.union(base, {"risk": object.union(base.risk, {"class": "limited"})})
	d := main.decision with input as inp
	d.obligations.disclosure == true
	"ai_act_art50_disclosure" in d.rules
}

test_minimal_risk_no_disclosure_streaming_allowed_payloads_not_stored if {
	inp := base
	d := main.decision with input as inp
	d.obligations.disclosure == false
	d.obligations.deny_streaming == false
	d.obligations.store_payloads == false
}

test_pii_actions_overridden_per_provider_kind if {
	inp := object.union(base, {"request": object.union(base.request, {"model": "local-llama", "provider": "local", "provider_kind": "local"})})
	d := main.decision with input as inp with data.pii.actions.provider_kinds as {"local": {"*": "allow"}}
	d.obligations.pii_actions == {"*": "allow"}
}

test_pii_actions_overridden_per_provider if {
	inp := base
	d := main.decision with input as inp with data.pii.actions.providers as {"openai": {"PERSON": "redact"}}
	d.obligations.pii_actions == {"*": "mask", "PERSON": "redact"}
}

# --- input_incomplete --------------------------------------------------------------

test_input_without_model_denied if {
	inp := object.union(base, {"request": object.remove(base.request, ["model"])})
	d := main.decision with input as inp
	not d.allow
	"input_incomplete" in d.rules
}

test_input_without_principal_denied if {
	inp := object.remove(base, ["principal", "pii", "risk"])
	d := main.decision with input as inp
	not d.allow
	"input_incomplete" in d.rules
}

test_complete_input_not_incomplete if {
	inp := base
	d := main.decision with input as inp
	not "input_incomplete" in d.rules
}
