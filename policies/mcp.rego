# MCP tool calls (route mcp.tools/call, input.tool set): tools that may change or delete
# data are called only by applications registered for them (data/mcp.yaml), and the
# operator may close tools outright. The same rules decide which tools tools/list shows.
# Personal data in the arguments is handled by the usual pii_actions obligations.
package appliance.main

import rego.v1

tool_path := concat("/", [input.tool.server, input.tool.name])

tool_matches(pattern) if pattern == "*"

tool_matches(pattern) if {
	pattern != "*"
	glob.match(pattern, null, tool_path)
}

# The caller's application is registered for this destructive tool, for the caller's tenant.
destructive_tool_granted if {
	app := data.mcp.applications[input.application.id]
	app.tenant == input.principal.tenant
	some pattern in app.destructive_tools
	tool_matches(pattern)
}

# METADATA
# title: Destructive tools only for registered applications
# description: A tool that may delete or overwrite data (MCP destructiveHint, or unannotated, or declared so by the operator) is called only by an application registered for it in data/mcp.yaml, for the caller's tenant.
# custom:
#   id: mcp_destructive_unregistered
#   article: GDPR Art. 32(1)(b), Art. 25; AI Act Art. 14 (human oversight of actions)
deny contains {"rule": "mcp_destructive_unregistered", "reason": reason} if {
	input.tool.annotations.destructive == true
	not destructive_tool_granted
	reason := concat("", ["tool ", tool_path, " may change or delete data and is allowed only to applications registered for it"])
}

# METADATA
# title: Tools the operator closed
# description: Tools listed in data/mcp.yaml denied_tools (server/tool glob patterns) are never offered nor called.
# custom:
#   id: mcp_tool_denied
#   article: GDPR Art. 32(4) (access on instruction only)
deny contains {"rule": "mcp_tool_denied", "reason": reason} if {
	some pattern in data.mcp.denied_tools
	tool_matches(pattern)
	reason := concat("", ["tool ", tool_path, " is closed by the operator"])
}
