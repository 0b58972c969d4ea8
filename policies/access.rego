# Who may use which model and provider: data/access.yaml grants models and providers
# (glob patterns) to departments and roles. A principal without a listed department
# gets the `fallback` grant; any of its roles may add more.
package appliance.main

import rego.v1

department_grant := grant if {
	grant := data.access.departments[input.principal.department]
}

department_grant := data.access.fallback if {
	not data.access.departments[input.principal.department]
}

# A grant pattern covers a model or provider name: "*" covers every name without running
# the glob engine (the common grant, and the costliest builtin call in a decision).
granted("*", name) if is_string(name)

granted(pattern, name) if {
	pattern != "*"
	glob.match(pattern, null, name)
}

model_allowed if {
	some pattern in department_grant.models
	granted(pattern, input.request.model)
}

model_allowed if {
	some role in input.principal.roles
	some pattern in data.access.roles[role].models
	granted(pattern, input.request.model)
}

provider_allowed if {
	some pattern in department_grant.providers
	granted(pattern, input.request.provider)
}

provider_allowed if {
	some role in input.principal.roles
	some pattern in data.access.roles[role].providers
	granted(pattern, input.request.provider)
}

# METADATA
# title: Model access by department and role
# description: A model may be used only when the caller's department or one of its roles is granted it (data/access.yaml).
# custom:
#   id: access_model
#   article: GDPR Art. 32(4) (access on instruction only); AI Act Art. 26(2) (assigned human oversight)
deny contains {"rule": "access_model", "reason": reason} if {
	not model_allowed
	reason := concat("", ["model ", input.request.model, " is not granted to the caller's department or roles"])
}

# METADATA
# title: Provider access by department and role
# description: A provider may be used only when the caller's department or one of its roles is granted it.
# custom:
#   id: access_provider
#   article: GDPR Art. 28 (processors only as instructed)
deny contains {"rule": "access_provider", "reason": reason} if {
	not provider_allowed
	reason := concat("", ["provider ", input.request.provider, " is not granted to the caller's department or roles"])
}
