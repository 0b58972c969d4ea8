# Unit tests of policies/prompt_attacks.rego (run with `appliance policy test`).
package appliance.prompt_attacks_test

import rego.v1

import data.appliance.main

base := {
	"principal": {"key_id": "key_1", "tenant": "acme", "user": "alice", "department": "engineering", "roles": ["developer"]},
	"request": {
		"route": "chat.completions", "model": "gpt-4o-mini", "requested_model": "gpt-4o-mini",
		"provider": "openai", "provider_kind": "openai", "provider_region": "eu",
		"token_estimate": 420, "max_tokens": 512, "stream": false, "tools": [],
	},
	"pii": {"scanned": true, "counts": {}, "types": [], "languages": ["en"]},
	"risk": {
		"assessed": true, "class": "minimal", "areas": [], "articles": [], "declared_class": null,
		"drift": false, "safety_flags": [], "safety_blocked": [],
	},
	"prompt_attack": {"scanned": true, "score": 0, "where": null, "technique": null, "scores": {"request": 0, "tool_result": 0, "retrieved": 0}},
	"application": {"id": null},
	"time": {"now": "2026-11-25T14:03:00Z", "hour": 14, "weekday": "wednesday"},
}

attack(where, score) := object.union(base, {"prompt_attack": {
	"scanned": true, "score": score, "where": where, "technique": "instruction_override",
	"scores": object.union({"request": 0, "tool_result": 0, "retrieved": 0}, {where: score}),
}})

test_no_attack_allowed_without_flag if {
	d := main.decision with input as base
	d.allow
	not "prompt_attack_flag" in d.rules
	not d.obligations.prompt_attack_flag
}

test_high_confidence_attack_in_request_denied if {
	inp := attack("request", 0.95)
	d := main.decision with input as inp
	not d.allow
	"prompt_attack_block" in d.rules
	d.reasons == ["a prompt-injection or jailbreak attempt was found in the request; the request was refused"]
}

test_medium_attack_in_request_flagged_not_denied if {
	inp := attack("request", 0.75)
	d := main.decision with input as inp
	d.allow
	"prompt_attack_flag" in d.rules
	d.obligations.prompt_attack_flag == true
}

test_tool_result_is_judged_more_strictly_than_the_request if {
	# The same score is flagged in the caller's words and refused inside a tool result.
	inp := attack("tool_result", 0.75)
	d := main.decision with input as inp
	not d.allow
	"prompt_attack_block" in d.rules
	not "prompt_attack_flag" in d.rules
	d.reasons == ["a prompt-injection or jailbreak attempt was found in a tool result; the request was refused"]
}

test_retrieved_content_below_its_threshold_flagged if {
	inp := attack("retrieved", 0.75)
	d := main.decision with input as inp
	d.allow
	"prompt_attack_flag" in d.rules
}

test_retrieved_content_above_its_threshold_denied if {
	inp := attack("retrieved", 0.85)
	d := main.decision with input as inp
	not d.allow
	"prompt_attack_block" in d.rules
}

test_a_weaker_place_still_blocks_at_its_threshold if {
	# The strongest text is in the request (flag level); a tool result crosses its own block line.
	inp := object.union(base, {"prompt_attack": {
		"scanned": true, "score": 0.8, "where": "request", "technique": "persona_jailbreak",
		"scores": {"request": 0.8, "tool_result": 0.72, "retrieved": 0},
	}})
	d := main.decision with input as inp
	not d.allow
	d.reasons == ["a prompt-injection or jailbreak attempt was found in a tool result; the request was refused"]
}

test_below_flag_threshold_allowed if {
	inp := attack("request", 0.45)
	d := main.decision with input as inp
	d.allow
	not "prompt_attack_flag" in d.rules
}

test_thresholds_are_policy_data if {
	inp := attack("request", 0.75)
	d := main.decision with input as inp with data.prompt_attacks.block.request as 0.7
	not d.allow
	"prompt_attack_block" in d.rules
}

test_input_without_screen_is_not_an_attack if {
	inp := object.remove(base, ["prompt_attack"])
	d := main.decision with input as inp
	d.allow
}
