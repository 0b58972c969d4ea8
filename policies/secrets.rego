# Credentials never leave the appliance: a prompt in which the PII stage found a secret
# (data/secrets.yaml lists the entity types) is refused.
package appliance.main

import rego.v1

secret_types := sort([t | some t in input.pii.types; t in data.secrets.entity_types])

# METADATA
# title: Block requests carrying secrets
# description: API keys, passwords, private keys and tokens must not be sent to a model.
# custom:
#   id: secrets_blocked
#   article: GDPR Art. 32(1) (security of processing)
deny contains {"rule": "secrets_blocked", "reason": reason} if {
	count(secret_types) > 0
	reason := concat("", ["the request contains secrets (", concat(", ", secret_types), "); remove them and retry"])
}
