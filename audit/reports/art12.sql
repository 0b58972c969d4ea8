-- AI Act Art. 12 log extract: the automatically recorded events of a system (an
-- application, or every application of a tenant) over a period, record by record, with
-- the segment and position of each record so that each one can be checked against the
-- hash chain and the signed checkpoint stated on the report (Art. 12(1), 12(2); kept at
-- least six months, Art. 19(1) and 26(6)). Tool calls through the MCP gateway are events of
-- the system like model requests (route mcp.tools/call, with their server and tool).
-- Content (prompts, answers, tool arguments) is never exported.

-- name: summary
SELECT count(*)                                        AS records,
       min(ts_start)                                   AS first_record,
       max(ts_start)                                   AS last_record,
       count(*) FILTER (WHERE decision = 'allow')      AS allowed,
       count(*) FILTER (WHERE decision = 'deny')       AS denied,
       count(*) FILTER (WHERE decision = 'error')      AS errors,
       count(DISTINCT user_id)                         AS users,
       count(DISTINCT model)                           AS models,
       count(DISTINCT segment_id)                      AS segments,
       count(*) FILTER (WHERE route = 'mcp.tools/call') AS tool_calls
FROM scope;

-- name: over_time
SELECT bucket                                          AS period_start,
       count(*)                                        AS records,
       count(*) FILTER (WHERE decision = 'deny')       AS denied,
       count(*) FILTER (WHERE decision = 'error')      AS errors
FROM scope
GROUP BY bucket
ORDER BY bucket;

-- name: by_decision
SELECT decision,
       coalesce(CAST(status AS VARCHAR), '-')          AS http_status,
       count(*)                                        AS records
FROM scope
GROUP BY ALL
ORDER BY records DESC, decision, http_status;

-- name: detail
-- Every record of the period; ordered by time, then by its place in its segment.
SELECT segment_id,
       seq,
       request_id,
       ts_start,
       ts_end,
       round(latency_ms, 3)                            AS latency_ms,
       tenant,
       user_id,
       key_id,
       department,
       application,
       route,
       json_extract_string(extra, '$.tool.server') || '/'
         || json_extract_string(extra, '$.tool.name')  AS tool,
       requested_model,
       model,
       provider,
       region,
       decision,
       status,
       error,
       risk_class,
       risk_drift,
       policy_revision,
       CAST(reasons AS VARCHAR)                        AS reasons,
       CAST(pii_counts AS VARCHAR)                     AS pii_counts,
       prompt_tokens,
       completion_tokens,
       payload_ct IS NOT NULL                          AS payload_stored,
       lower(hex(leaf_hash))                                  AS record_hash
FROM scope
ORDER BY ts_start, segment_id, seq;
