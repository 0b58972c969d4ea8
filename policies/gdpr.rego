# Special categories of personal data (GDPR Art. 9):
# - Art. 9(1)/(2): a request in which the PII stage found them (health, ethnic origin,
#   political opinions, religion, trade-union membership, genetic, biometric, sex life)
#   goes to an external provider only from an application registered with an Art. 9(2)
#   legal basis covering each of them (`appliance apps register --art9-basis`, or
#   art9_basis in data/applications.yaml); local models may always serve it.
# - Art. 44: such data (or risk tags meaning it) stay in allowed regions.
# Either way the request is denied, or re-routed to a local model if
# data.gdpr.reroute_model is set.
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

# --- Art. 9(1)/(2): a legal basis before special categories leave the premises ----------

# What the PII stage found: its own list, or (inputs recorded before it had one) the
# types that data.gdpr.special_category_types names.
art9_categories contains t if {
	some t in input.pii.special_categories
}

art9_categories contains t if {
	some t in input.pii.types
	t in data.gdpr.special_category_types
}

# A registered basis covers a category: for that category or for all ("*"), and only a
# basis of Art. 9(2) (data.gdpr.art9_bases) counts.
art9_basis_covers(bases, t) if {
	bases[t] in data.gdpr.art9_bases
}

art9_basis_covers(bases, t) if {
	bases["*"] in data.gdpr.art9_bases
}

art9_covered contains t if {
	some t in art9_categories
	art9_basis_covers(input.application.art9_basis, t)
}

# Declared in policy data instead, for the caller's own tenant.
art9_covered contains t if {
	some t in art9_categories
	app := data.applications[input.application.id]
	app.tenant == input.principal.tenant
	art9_basis_covers(app.art9_basis, t)
}

art9_uncovered := sort([t | some t in art9_categories; not t in art9_covered])

provider_is_local if input.request.provider_kind == "local"

# (Written as "not local", so that an input without provider_kind fails closed.)
art9_to_external if {
	count(art9_uncovered) > 0
	not provider_is_local
}

# METADATA
# title: Special categories go to external providers only with an Art. 9(2) basis
# description: Health, ethnic origin, political opinions, religious beliefs, trade-union membership, genetic, biometric or sex-life data found in a request go to a non-local provider only when the calling application is registered with an Art. 9(2) legal basis for each of them; local models may serve such requests.
# custom:
#   id: gdpr_art9_special_categories
#   article: GDPR Art. 9(1), Art. 9(2)
deny contains {"rule": "gdpr_art9_special_categories", "reason": reason} if {
	art9_to_external
	not reroute_model
	reason := concat("", ["special-category data (GDPR Art. 9(1): ", concat(", ", art9_uncovered), ") may go to an external provider only from an application registered with an Art. 9(2) legal basis for it; use a local model or register the basis"])
}

# METADATA
# title: Re-route special categories without a basis to a local model
# description: When data.gdpr.reroute_model names a local model, a request that would send special categories without an Art. 9(2) basis to an external provider goes there instead.
# custom:
#   id: gdpr_art9_reroute_local
#   article: GDPR Art. 9(1), Art. 25
obligation_extras contains ["gdpr_art9_reroute_local", {"force_local_model": reroute_model}] if {
	art9_to_external
	reroute_model
}
