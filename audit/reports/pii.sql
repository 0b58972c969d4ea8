-- PII report: personal-data findings by entity type and the action taken on them, over
-- time. Counts only: the log never holds the values. The action is the redaction stage's
-- action for that entity type (mask | hash | redact | allow ...); a request that was
-- denied was not forwarded at all ("not forwarded"); "none recorded" means the request
-- was forwarded without a redaction record (redaction switched off). Special categories
-- (GDPR Art. 9) are counted apart as well: they are facts about a person, left in the
-- text unless the policy names them, and the policy decides where such requests may go.

-- name: findings
-- (helper view: one row per request and entity type)
CREATE OR REPLACE TEMP VIEW pii_findings AS
SELECT s.bucket, s.tenant, s.application, s.request_id, s.decision,
       f.key   AS entity_type,
       f.value AS findings,
       CASE
         WHEN s.decision <> 'allow' THEN 'not forwarded'
         ELSE coalesce(CAST(s.redaction AS MAP(VARCHAR, JSON))['actions'] ->> f.key, 'none recorded')
       END     AS action
FROM (SELECT *, unnest(map_entries(CAST(pii_counts AS MAP(VARCHAR, BIGINT)))) AS f
      FROM scope WHERE pii_total > 0) AS s;

-- name: summary
SELECT (SELECT count(*) FROM scope)                                     AS requests,
       (SELECT count(*) FROM scope WHERE pii_total > 0)                 AS requests_with_pii,
       (SELECT coalesce(sum(findings), 0) FROM pii_findings)            AS findings,
       (SELECT count(DISTINCT entity_type) FROM pii_findings)           AS entity_types,
       (SELECT coalesce(sum(findings), 0) FROM pii_findings
         WHERE action = 'not forwarded')                                AS findings_not_forwarded,
       (SELECT coalesce(sum(findings), 0) FROM pii_findings
         WHERE entity_type IN (SELECT entity_type FROM special_categories)) AS special_category_findings,
       (SELECT count(DISTINCT request_id) FROM pii_findings
         WHERE entity_type IN (SELECT entity_type FROM special_categories)) AS requests_with_special_categories,
       (SELECT count(DISTINCT request_id) FROM pii_findings
         WHERE entity_type IN (SELECT entity_type FROM special_categories)
           AND action = 'not forwarded')                                AS special_category_requests_not_forwarded;

-- name: by_entity
SELECT entity_type,
       sum(findings)                                                    AS findings,
       count(DISTINCT request_id)                                       AS requests
FROM pii_findings
GROUP BY ALL
ORDER BY findings DESC, entity_type;

-- name: by_special_category
-- GDPR Art. 9 special categories: findings and requests, forwarded or not.
SELECT c.entity_type                                                    AS special_category,
       c.article,
       coalesce(sum(f.findings), 0)                                     AS findings,
       count(DISTINCT f.request_id)                                     AS requests,
       count(DISTINCT f.request_id) FILTER (WHERE f.decision = 'allow') AS forwarded,
       count(DISTINCT f.request_id) FILTER (WHERE f.decision <> 'allow') AS not_forwarded
FROM special_categories AS c
LEFT JOIN pii_findings AS f ON f.entity_type = c.entity_type
GROUP BY ALL
ORDER BY findings DESC, special_category;

-- name: by_action
SELECT action,
       sum(findings)                                                    AS findings,
       count(DISTINCT request_id)                                       AS requests
FROM pii_findings
GROUP BY ALL
ORDER BY findings DESC, action;

-- name: over_time
SELECT bucket                                                           AS period_start,
       sum(findings)                                                    AS findings,
       count(DISTINCT request_id)                                       AS requests
FROM pii_findings
GROUP BY bucket
ORDER BY bucket;

-- name: detail
-- One row per time bucket, tenant, application, entity type and action.
SELECT bucket                                                           AS period_start,
       tenant, application, entity_type, action,
       sum(findings)                                                    AS findings,
       count(*)                                                         AS requests
FROM pii_findings
GROUP BY ALL
ORDER BY ALL;
