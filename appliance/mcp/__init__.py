"""The MCP gateway's parts below the server: the upstream client (streamable HTTP) and the
tools it offers, with their annotations. The route that serves clients is
``appliance/server/mcp_gateway.py``; each ``tools/call`` runs through the pipeline."""
