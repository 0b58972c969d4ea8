-- Draft serious-incident report (AI Act Art. 73): the requests concerned and the facts
-- the log holds about them. The requests are the ones named with --request-id; when none
-- is named, the requests of the period that a safety or risk control flagged (safety
-- flags or blocks, prohibited practice, server error). The reporting deadlines are
-- computed by the exporter from the date of awareness and the kind of incident.

-- name: selection
CREATE OR REPLACE TEMP VIEW incident_requests AS
SELECT s.*
FROM scope AS s CROSS JOIN params AS p
WHERE CASE
        WHEN len(p.request_ids) > 0 THEN list_contains(p.request_ids, s.request_id)
        ELSE len(coalesce(CAST(s.safety_flags AS VARCHAR[]), [])) > 0
          OR len(coalesce(CAST(s.safety_blocked AS VARCHAR[]), [])) > 0
          OR s.risk_class = 'prohibited'
          OR s.status >= 500
      END;

-- name: summary
SELECT count(*)                                                         AS requests,
       min(ts_start)                                                    AS first_request,
       max(ts_start)                                                    AS last_request,
       count(DISTINCT tenant)                                           AS tenants,
       count(DISTINCT application)                                      AS applications,
       count(DISTINCT model)                                            AS models,
       count(*) FILTER (WHERE decision = 'deny')                        AS denied,
       count(*) FILTER (WHERE decision = 'allow')                       AS answered
FROM incident_requests;

-- name: systems
-- The AI systems (applications, models, providers) involved.
SELECT coalesce(i.tenant, '(none)')                                     AS tenant,
       coalesce(i.application, '(none)')                                AS application,
       coalesce(a.risk_class, i.declared_class, '(not declared)')       AS declared_class,
       coalesce(i.model, '(none)')                                      AS model,
       coalesce(i.provider, '(none)')                                   AS provider,
       count(*)                                                         AS requests
FROM incident_requests AS i
LEFT JOIN applications AS a ON a.tenant = i.tenant AND a.name = i.application
GROUP BY ALL
ORDER BY requests DESC, tenant, application, model;

-- name: detail
SELECT ts_start, request_id, tenant, application, user_id, model, provider, region,
       decision, status, error, risk_class,
       CAST(risk_areas AS VARCHAR)                                      AS areas,
       CAST(safety_flags AS VARCHAR)                                    AS safety_flags,
       CAST(safety_blocked AS VARCHAR)                                  AS safety_blocked,
       CAST(reasons AS VARCHAR)                                         AS reasons,
       policy_revision,
       payload_ct IS NOT NULL                                           AS payload_stored,
       segment_id, seq, lower(hex(leaf_hash))                                  AS record_hash
FROM incident_requests
ORDER BY ts_start, segment_id, seq;

-- name: segments_in_scope
-- The data this draft rests on: the segments holding the requests concerned.
SELECT segment_id,
       count(*)          AS records,
       min(ts_start)     AS first_record,
       max(ts_start)     AS last_record
FROM incident_requests
GROUP BY segment_id
ORDER BY segment_id;
