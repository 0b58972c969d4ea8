# A decision needs to know who asks for what: an input without these facts is refused
# (a policy that cannot tell must say no).
package appliance.main

import rego.v1

missing_facts contains "principal.tenant" if not is_string(input.principal.tenant)

missing_facts contains "request.model" if not is_string(input.request.model)

missing_facts contains "request.provider" if not is_string(input.request.provider)

missing_facts contains "request.provider_region" if not is_string(input.request.provider_region)

missing_facts contains "request.token_estimate" if not is_number(input.request.token_estimate)

missing_facts contains "pii" if not is_object(input.pii)

missing_facts contains "risk" if not is_object(input.risk)

# METADATA
# title: Incomplete input is refused
# description: Without principal, model, provider, region, size, PII and risk facts no rule can be trusted to decide.
# custom:
#   id: input_incomplete
#   article: fail closed (design principle)
deny contains {"rule": "input_incomplete", "reason": reason} if {
	count(missing_facts) > 0
	reason := concat("", ["the policy input lacks ", concat(", ", sort([f | some f in missing_facts]))])
}
