# What later stages must do with an allowed request. The core obligations are always
# present; optional ones (force_local_model, max_tokens) come from `obligation_extras`
# rules in the other modules, each as [rule id, {key: value}].
package appliance.main

import rego.v1

kind_actions := actions if {
	actions := data.pii.actions.provider_kinds[input.request.provider_kind]
}

default kind_actions := {}

provider_actions := actions if {
	actions := data.pii.actions.providers[input.request.provider]
}

default provider_actions := {}

# Per-entity PII actions: the defaults ("*": mask), overridden per provider kind, then per provider.
pii_actions := object.union(object.union(data.pii.actions.all_providers, kind_actions), provider_actions)

default disclosure := false

# METADATA
# title: AI-generated content is disclosed
# description: Answers in the listed risk classes carry a disclosure that they are AI-generated.
# custom:
#   id: ai_act_art50_disclosure
#   article: AI Act Art. 50
disclosure if input.risk.class in data.ai_act.disclosure_classes

default deny_streaming := false

# METADATA
# title: No streaming for high-risk uses
# description: High-risk answers are screened whole before the deployer's staff sees them.
# custom:
#   id: high_risk_no_streaming
#   article: AI Act Art. 14 (human oversight), Art. 26(1)
deny_streaming if input.risk.class in data.ai_act.deny_streaming_classes

default store_payloads := false

# METADATA
# title: Keep prompts and answers of high-risk uses
# description: The audit log stores the (encrypted) payloads of high-risk uses.
# custom:
#   id: ai_act_art12_record_keeping
#   article: AI Act Art. 12, Art. 26(6)
store_payloads if input.risk.class in data.ai_act.store_payload_classes

core_obligations := {
	"pii_actions": pii_actions,
	"restore_pii": data.pii.restore_pii,
	"disclosure": disclosure,
	"deny_streaming": deny_streaming,
	"store_payloads": store_payloads,
}

obligations := object.union(core_obligations, {k: v | some [_, extra] in obligation_extras; some k, v in extra})

fired contains "ai_act_art50_disclosure" if disclosure

fired contains "high_risk_no_streaming" if deny_streaming

fired contains "ai_act_art12_record_keeping" if store_payloads
