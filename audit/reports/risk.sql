-- AI Act risk report: classification of applications (declared, Art. 6 and Annex III)
-- and of requests (observed by the classifier), drift between the two, the denials of
-- prohibited practices (Art. 5), and high-risk use served from applications that are not
-- registered as high-risk ("registration needed": the policy rule
-- ai_act_art26_registration_needed fired; Art. 26, 49). Classes: prohibited | high |
-- limited | minimal; NULL means the request was not classified (classification switched
-- off or failed).

-- name: flagged
-- (helper view: the scope with registration_needed per request)
CREATE OR REPLACE TEMP VIEW risk_scope AS
SELECT *,
       coalesce(list_contains(CAST(policy_rules AS VARCHAR[]), 'ai_act_art26_registration_needed'),
                false)                                                     AS registration_needed
FROM scope;

-- name: summary
SELECT count(*)                                                            AS requests,
       count(*) FILTER (WHERE risk_class = 'prohibited')                   AS prohibited,
       count(*) FILTER (WHERE risk_class = 'high')                         AS high,
       count(*) FILTER (WHERE risk_class = 'limited')                      AS limited,
       count(*) FILTER (WHERE risk_class = 'minimal')                      AS minimal,
       count(*) FILTER (WHERE risk_class IS NULL)                          AS unclassified,
       count(*) FILTER (WHERE risk_drift)                                  AS drift,
       count(*) FILTER (WHERE risk_class = 'prohibited' AND decision = 'deny')  AS prohibited_denied,
       count(*) FILTER (WHERE risk_class = 'prohibited' AND decision <> 'deny') AS prohibited_not_denied,
       count(*) FILTER (WHERE registration_needed)                         AS registration_needed,
       count(DISTINCT (coalesce(tenant, ''), coalesce(application, '(none)')))
         FILTER (WHERE registration_needed)                                AS applications_needing_registration
FROM risk_scope;

-- name: by_class
SELECT coalesce(risk_class, '(unclassified)')                              AS risk_class,
       count(*)                                                            AS requests,
       count(*) FILTER (WHERE decision = 'deny')                           AS denied,
       count(*) FILTER (WHERE risk_drift)                                  AS drift
FROM scope
GROUP BY scope.risk_class
ORDER BY CASE scope.risk_class WHEN 'prohibited' THEN 0 WHEN 'high' THEN 1
                               WHEN 'limited' THEN 2 WHEN 'minimal' THEN 3 ELSE 4 END;

-- name: over_time
SELECT bucket                                                              AS period_start,
       count(*) FILTER (WHERE risk_class = 'prohibited')                   AS prohibited,
       count(*) FILTER (WHERE risk_class = 'high')                         AS high,
       count(*) FILTER (WHERE risk_class = 'limited')                      AS limited,
       count(*) FILTER (WHERE risk_class = 'minimal')                      AS minimal,
       count(*) FILTER (WHERE risk_drift)                                  AS drift
FROM scope
GROUP BY bucket
ORDER BY bucket;

-- name: applications
-- Declared class (registry) against the classes observed in requests.
SELECT coalesce(s.tenant, '(none)')                                        AS tenant,
       coalesce(s.application, '(none)')                                   AS application,
       coalesce(a.risk_class, s.declared_class, '(not declared)')          AS declared_class,
       a.annex_iii                                                         AS annex_iii,
       count(*)                                                            AS requests,
       count(*) FILTER (WHERE s.risk_class = 'prohibited')                 AS prohibited,
       count(*) FILTER (WHERE s.risk_class = 'high')                       AS high,
       count(*) FILTER (WHERE s.registration_needed)                       AS registration_needed,
       count(*) FILTER (WHERE s.risk_drift)                                AS drift
FROM risk_scope AS s
LEFT JOIN applications AS a ON a.tenant = s.tenant AND a.name = s.application
GROUP BY ALL
ORDER BY registration_needed DESC, drift DESC, prohibited DESC, high DESC, tenant, application;

-- name: registration
-- Applications that served high-risk use without being registered as high-risk for the
-- tenant: register them (appliance apps register, data/applications.yaml) or review why
-- their requests read as Annex III uses. "(none)": keys without an application.
SELECT coalesce(s.tenant, '(none)')                                        AS tenant,
       coalesce(s.application, '(none)')                                   AS application,
       count(*)                                                            AS requests,
       string_agg(DISTINCT area.id, ', ' ORDER BY area.id)                 AS areas,
       min(s.ts_start)                                                     AS first_seen,
       max(s.ts_start)                                                     AS last_seen
FROM (SELECT *,
             unnest(CAST(risk_areas AS STRUCT(id VARCHAR, article VARCHAR, score DOUBLE)[])) AS area
      FROM risk_scope WHERE registration_needed) AS s
GROUP BY ALL
ORDER BY requests DESC, tenant, application;

-- name: areas
-- AI Act areas matched in requests (Art. 5 practices, Annex III areas, Art. 50).
SELECT area.id                                                             AS area,
       coalesce(area.article, '')                                          AS article,
       count(*)                                                            AS requests,
       count(*) FILTER (WHERE decision = 'deny')                           AS denied
FROM (SELECT decision,
             unnest(CAST(risk_areas AS STRUCT(id VARCHAR, article VARCHAR, score DOUBLE)[])) AS area
      FROM scope)
GROUP BY ALL
ORDER BY requests DESC, area;

-- name: detail
-- Requests that matter for risk management: prohibited or high-risk, or drifting from
-- the declared purpose.
SELECT ts_start, request_id, tenant, application, declared_class, risk_class,
       CAST(risk_areas AS VARCHAR)                                         AS areas,
       risk_drift                                                          AS drift,
       decision,
       registration_needed,
       CAST(reasons AS VARCHAR)                                            AS reasons,
       segment_id, seq
FROM risk_scope
WHERE risk_class IN ('prohibited', 'high') OR risk_drift
ORDER BY ts_start, segment_id, seq;
