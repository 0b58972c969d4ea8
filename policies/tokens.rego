# Per-tenant token caps (data/limits.yaml): prompts over the tenant's prompt cap are
# refused; answers are capped at the tenant's output cap.
package appliance.main

import rego.v1

tenant_limits := limits if {
	limits := data.limits.tenants[input.principal.tenant]
}

tenant_limits := data.limits.fallback if {
	not data.limits.tenants[input.principal.tenant]
}

# METADATA
# title: Prompt size cap per tenant
# description: A prompt whose token estimate exceeds the tenant's max_prompt_tokens is refused.
# custom:
#   id: tenant_prompt_cap
#   article: internal cost control (not a regulation)
deny contains {"rule": "tenant_prompt_cap", "reason": reason} if {
	input.request.token_estimate > tenant_limits.max_prompt_tokens
	reason := sprintf("prompt of about %v tokens exceeds the tenant cap of %v", [input.request.token_estimate, tenant_limits.max_prompt_tokens])
}

# (No min(): rego-cpp 1.5.2 returns the largest element from it.)
output_cap := input.request.max_tokens if {
	is_number(input.request.max_tokens)
	input.request.max_tokens <= tenant_limits.max_output_tokens
}

output_cap := tenant_limits.max_output_tokens if {
	is_number(input.request.max_tokens)
	input.request.max_tokens > tenant_limits.max_output_tokens
}

output_cap := tenant_limits.max_output_tokens if {
	not is_number(input.request.max_tokens)
}

# METADATA
# title: Answer size cap per tenant
# description: max_tokens is capped at the tenant's max_output_tokens.
# custom:
#   id: tenant_output_cap
#   article: internal cost control (not a regulation)
obligation_extras contains ["tenant_output_cap", {"max_tokens": output_cap}] if {
	is_number(output_cap)
}
