# Unit tests of policies/mcp.rego (run with `appliance policy test`).
package appliance.mcp_test

import rego.v1

import data.appliance.main

call := {
	"principal": {"key_id": "key_1", "tenant": "acme", "user": "alice", "department": "engineering", "roles": []},
	"request": {
		"route": "mcp.tools/call", "model": "mcp:crm/lookup_customer", "requested_model": "mcp:crm/lookup_customer",
		"provider": "mcp:crm", "provider_kind": null, "provider_region": "eu",
		"token_estimate": 12, "max_tokens": null, "stream": false, "tools": [],
	},
	"pii": {"scanned": true, "counts": {}, "types": [], "languages": ["en"]},
	"risk": {
		"assessed": true, "class": "minimal", "areas": [], "articles": [], "declared_class": null,
		"drift": false, "safety_flags": [], "safety_blocked": [],
	},
	"application": {"id": null},
	"tool": {"server": "crm", "name": "lookup_customer", "annotations": {"read_only": true, "destructive": false, "idempotent": true, "open_world": false}},
	"time": {"now": "2026-11-25T14:03:00Z", "hour": 14, "weekday": "wednesday"},
}

destructive := object.union(call, {"tool": {"server": "crm", "name": "update_customer", "annotations": {"read_only": false, "destructive": true, "idempotent": false, "open_world": false}}})

test_read_only_tool_allowed if {
	inp := call
	d := main.decision with input as inp
	d.allow
}

test_destructive_tool_denied_without_registration if {
	inp := destructive
	d := main.decision with input as inp
	not d.allow
	"mcp_destructive_unregistered" in d.rules
}

test_destructive_tool_allowed_for_registered_application if {
	inp := object.union(destructive, {"application": {"id": "crm-agent"}})
	d := main.decision with input as inp
	d.allow
}

test_registration_is_per_tenant if {
	inp := object.union(destructive, {
		"application": {"id": "crm-agent"},
		"principal": object.union(call.principal, {"tenant": "globex"}),
	})
	d := main.decision with input as inp
	not d.allow
}

test_registration_covers_only_its_tools if {
	inp := object.union(destructive, {
		"application": {"id": "crm-agent"},
		"tool": {"server": "crm", "name": "delete_customer", "annotations": {"read_only": false, "destructive": true, "idempotent": false, "open_world": false}},
	})
	d := main.decision with input as inp
	not d.allow
}

test_operator_closes_a_tool if {
	inp := call
	d := main.decision with input as inp with data.mcp.denied_tools as ["crm/lookup_*"]
	not d.allow
	"mcp_tool_denied" in d.rules
}

test_chat_requests_untouched if {
	inp := object.union(call, {"tool": null, "request": object.union(call.request, {"route": "chat.completions"})})
	d := main.decision with input as inp
	d.allow
}
