# Special categories of personal data (GDPR Art. 9) stay in allowed regions (Art. 44):
# a request that carries them goes only to providers in data.gdpr.allowed_regions;
# otherwise it is denied, or re-routed to a local model if data.gdpr.reroute_model is set.
package appliance.main

import rego.v1

special_categories contains t if {
	some t in input.pii.types
	t in data.gdpr.special_category_types
}

special_categories contains t if {
	some t in input.risk.areas
	t in data.gdpr.special_category_tags
}

special_categories contains t if {
	some t in input.risk.safety_flags
	t in data.gdpr.special_category_tags
}

region_allowed if input.request.provider_region in data.gdpr.allowed_regions

reroute_model := m if {
	m := data.gdpr.reroute_model
	is_string(m)
	m != ""
}

special_transfer if {
	count(special_categories) > 0
	not region_allowed
}

# METADATA
# title: No special-category data to providers outside allowed regions
# description: Health, religion, ethnic origin, political opinion, sexual orientation, biometric or genetic data go only to providers in the allowed (EU / on-premises) regions.
# custom:
#   id: gdpr_art9_art44_special_category_transfer
#   article: GDPR Art. 9(1), Art. 44
deny contains {"rule": "gdpr_art9_art44_special_category_transfer", "reason": reason} if {
	special_transfer
	not reroute_model
	reason := concat("", ["special-category data (GDPR Art. 9: ", concat(", ", sort([t | some t in special_categories])), ") may not go to provider region ", input.request.provider_region, " (GDPR Art. 44)"])
}

# METADATA
# title: Re-route special-category data to a local model
# description: When data.gdpr.reroute_model names a local model, a request that would be a forbidden transfer goes there instead.
# custom:
#   id: gdpr_art44_reroute_local
#   article: GDPR Art. 44
obligation_extras contains ["gdpr_art44_reroute_local", {"force_local_model": reroute_model}] if {
	special_transfer
	reroute_model
}
