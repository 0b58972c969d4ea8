# Prompt attacks (injection and jailbreak attempts, EN + DE): the classify stage's screen
# scores what the request supplied, per place it arrived (input.prompt_attack.scores:
# the caller's own words, tool results, documents pasted after the question). A score at
# or above the block threshold of its place (data/prompt_attacks.yaml) denies the
# request; at or above the flag threshold the request is served, with the obligation
# prompt_attack_flag and the rule id in the audit record. Tool results and retrieved
# documents have lower block thresholds: neither has a reason to address the model.
package appliance.main

import rego.v1

place_names := {"request": "the request", "tool_result": "a tool result", "retrieved": "retrieved content"}

prompt_attack_blocked_places contains place if {
	some place, score in input.prompt_attack.scores
	score >= data.prompt_attacks.block[place]
}

# METADATA
# title: Prompt attacks above the block threshold are refused
# description: A prompt-injection or jailbreak attempt scored at or above the block threshold of the place it was found in (request, tool result, retrieved content; data/prompt_attacks.yaml) is refused.
# custom:
#   id: prompt_attack_block
#   article: AI Act Art. 15(5) (resilience against attempts to alter use or behaviour); GDPR Art. 32(1)(b)
deny contains {"rule": "prompt_attack_block", "reason": reason} if {
	count(prompt_attack_blocked_places) > 0
	names := sort([place_names[p] | some p in prompt_attack_blocked_places])
	reason := concat("", ["a prompt-injection or jailbreak attempt was found in ", concat(" and ", names), "; the request was refused"])
}

# METADATA
# title: Prompt attacks below the block threshold are flagged
# description: A request whose prompt-attack score reaches the flag threshold but no block threshold is served with the obligation prompt_attack_flag, recorded in the audit log.
# custom:
#   id: prompt_attack_flag
#   article: AI Act Art. 12 (record-keeping), Art. 15(5)
obligation_extras contains ["prompt_attack_flag", {"prompt_attack_flag": true}] if {
	input.prompt_attack.score >= data.prompt_attacks.flag
	count(prompt_attack_blocked_places) == 0
}
