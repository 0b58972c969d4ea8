# EU AI Act: prohibited practices are never served. High-risk (Annex III) uses are the
# deployer's *systems*: an application registered as high-risk for the caller's tenant (in
# data/applications.yaml, or with `appliance apps register`, the declared purpose arriving
# as risk.declared_class) serves them with the high-risk obligations. A high-risk request
# from an application that is not registered is, by default, served, tagged and reported as
# "registration needed" (AI Act Art. 26, 49: the deployer registers the system, the proxy
# cannot tell from one request whether it is one); data.ai_act.unregistered_high_risk:
# deny refuses it instead.
package appliance.main

import rego.v1

registered_high_risk if {
	app := data.applications[input.application.id]
	app.high_risk == true
	app.tenant == input.principal.tenant
}

# Registered in the appliance's application registry (looked up for the caller's tenant)
# with a declared purpose in the high-risk class.
registered_high_risk if {
	input.application.id != null
	input.risk.declared_class == "high"
}

unregistered_high_risk if {
	input.risk.class == "high"
	not registered_high_risk
}

# The switch in data/ai_act.yaml. Only "allow" allows: a missing key (a data file older
# than the switch) or a misspelt value denies, as every version before it did.
unregistered_high_risk_allowed if data.ai_act.unregistered_high_risk == "allow"

# METADATA
# title: Prohibited AI practices are always denied
# description: Requests classified as a practice prohibited by Art. 5 (manipulation, social scoring, emotion recognition at work, ...) are refused whoever asks.
# custom:
#   id: ai_act_art5_prohibited
#   article: AI Act Art. 5(1)
deny contains {"rule": "ai_act_art5_prohibited", "reason": reason} if {
	input.risk.class == "prohibited"
	reason := concat("", ["prohibited AI practice (AI Act Art. 5; areas: ", concat(", ", input.risk.areas), ")"])
}

# METADATA
# title: High-risk uses from unregistered applications denied (switch set to deny)
# description: With data.ai_act.unregistered_high_risk set to deny (or unset), a request classified high-risk (Annex III) is served only for an application the deployer registered as high-risk, for the same tenant.
# custom:
#   id: ai_act_art26_high_risk_unregistered
#   article: AI Act Art. 6(2), Art. 26, Art. 49
deny contains {"rule": "ai_act_art26_high_risk_unregistered", "reason": reason} if {
	unregistered_high_risk
	not unregistered_high_risk_allowed
	reason := concat("", ["high-risk use (AI Act Art. 6, Annex III; areas: ", concat(", ", input.risk.areas), ") is allowed only from a registered high-risk application"])
}

# METADATA
# title: High-risk uses from unregistered applications served, registration needed
# description: With data.ai_act.unregistered_high_risk set to allow (the shipped setting), a request classified high-risk from an application not registered as high-risk is served with the high-risk obligations and the obligation registration_needed, which the audit record, the AI Act risk report and the metric appliance_registration_needed_total carry.
# custom:
#   id: ai_act_art26_registration_needed
#   article: AI Act Art. 26, Art. 49
obligation_extras contains ["ai_act_art26_registration_needed", {"registration_needed": true}] if {
	unregistered_high_risk
	unregistered_high_risk_allowed
}
