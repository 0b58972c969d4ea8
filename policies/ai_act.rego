# EU AI Act: prohibited practices are never served; high-risk uses only from
# applications registered as high-risk for the caller's tenant: in data/applications.yaml,
# or with `appliance apps register` (the declared purpose arrives as risk.declared_class).
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
# title: High-risk uses only from registered applications
# description: A request classified high-risk (Annex III) is served only for an application the deployer registered as high-risk, for the same tenant.
# custom:
#   id: ai_act_art26_high_risk_unregistered
#   article: AI Act Art. 6(2), Art. 26, Art. 49
deny contains {"rule": "ai_act_art26_high_risk_unregistered", "reason": reason} if {
	input.risk.class == "high"
	not registered_high_risk
	reason := concat("", ["high-risk use (AI Act Art. 6, Annex III; areas: ", concat(", ", input.risk.areas), ") is allowed only from a registered high-risk application"])
}
