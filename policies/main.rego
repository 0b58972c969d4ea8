# The decision every request gets. (Build reason texts with concat: rego-cpp 1.5.2
# garbles sprintf("%v") of a computed string.) Deny rules live in the other modules of this
# package; each adds {"rule": id, "reason": text} to `deny`. Obligations are gathered
# in obligations.rego. A request is allowed only when no deny rule fires.
package appliance.main

import rego.v1

default allow := false

allow if count(deny) == 0

# The entrypoint (`[policy] package` + `entrypoint`): what the decide stage reads.
decision := {
	"allow": allow,
	"reasons": sort([d.reason | some d in deny]),
	"obligations": obligations,
	"rules": sort([r | some r in fired]),
}

fired contains d.rule if {
	some d in deny
}

fired contains o if {
	some [o, _] in obligation_extras
}
