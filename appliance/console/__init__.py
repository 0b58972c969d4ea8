"""The compliance console: a server-rendered web UI for auditors, compliance officers
and operators (sign-in, roles, overview, audit trail, policies with replay and four-eyes
approval, applications, keys, reports, incidents), mounted by the server at /console."""
