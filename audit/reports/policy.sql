-- Policy report: decisions of the policy engine and of the other stages that can deny
-- (limits, safety), the reasons given, the rules that fired, and which policy revisions
-- were in force over the period.

-- name: summary
SELECT count(*)                                                         AS decisions,
       count(*) FILTER (WHERE decision = 'allow')                       AS allowed,
       count(*) FILTER (WHERE decision = 'deny')                        AS denied,
       count(*) FILTER (WHERE decision = 'rate_limited')                AS rate_limited,
       count(*) FILTER (WHERE decision = 'error')                       AS errors,
       count(DISTINCT policy_revision)                                  AS revisions
FROM scope;

-- name: over_time
SELECT bucket                                                           AS period_start,
       count(*) FILTER (WHERE decision = 'allow')                       AS allowed,
       count(*) FILTER (WHERE decision = 'deny')                        AS denied,
       count(*) FILTER (WHERE decision = 'error')                       AS errors
FROM scope
GROUP BY bucket
ORDER BY bucket;

-- name: reasons
-- Denial reasons (a denied request may give several).
SELECT reason,
       count(*)                                                         AS denials
FROM (SELECT unnest(CAST(reasons AS VARCHAR[])) AS reason
      FROM scope WHERE decision = 'deny')
GROUP BY ALL
ORDER BY denials DESC, reason;

-- name: rules
SELECT rule,
       count(*)                                                         AS hits,
       count(*) FILTER (WHERE decision = 'deny')                        AS in_denials
FROM (SELECT decision, unnest(CAST(policy_rules AS VARCHAR[])) AS rule FROM scope)
GROUP BY ALL
ORDER BY hits DESC, rule;

-- name: revisions
-- Policy revisions in force: first and last decision each one made in the period.
SELECT coalesce(policy_revision, '(none)')                              AS policy_revision,
       min(ts_start)                                                    AS first_decision,
       max(ts_start)                                                    AS last_decision,
       count(*)                                                         AS decisions,
       count(*) FILTER (WHERE decision = 'deny')                        AS denied
FROM scope
GROUP BY ALL
ORDER BY first_decision, policy_revision;

-- name: detail
-- Every decision that was not a plain allow, with its reasons and rules.
SELECT ts_start, request_id, tenant, application, model, decision, status,
       policy_revision,
       CAST(policy_rules AS VARCHAR)                                    AS rules,
       CAST(reasons AS VARCHAR)                                         AS reasons,
       segment_id, seq
FROM scope
WHERE decision <> 'allow'
ORDER BY ts_start, segment_id, seq;
