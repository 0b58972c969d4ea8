-- GDPR Art. 30 record of processing activities, per application.
-- Purposes come from the application registry; categories of personal data from the
-- PII findings (entity types, counts only), special categories of Art. 9(1) marked, with
-- the Art. 9(2) basis the application is registered with; recipients are the model
-- providers that received requests and the MCP servers that received tool calls;
-- third-country transfers follow the provider region (macro
-- third_country in _scope.sql). Retention and security measures are stated by the
-- exporter from the configuration in force (Art. 30(1)(f) and (g)).

-- name: summary
SELECT count(DISTINCT (tenant, application))                                  AS applications,
       count(*)                                                               AS requests,
       count(*) FILTER (WHERE pii_total > 0)                                  AS requests_with_personal_data,
       count(*) FILTER (WHERE list_has_any(json_keys(pii_counts),
                        (SELECT list(entity_type) FROM special_categories)))  AS requests_with_special_categories,
       count(DISTINCT provider) FILTER (WHERE decision = 'allow')             AS recipients,
       count(DISTINCT provider) FILTER (WHERE decision = 'allow'
                                          AND third_country(region) = 'yes')  AS third_country_recipients,
       count(*) FILTER (WHERE decision = 'allow'
                          AND third_country(region) = 'yes')                  AS third_country_requests
FROM scope;

-- name: applications
WITH special AS (
    SELECT tenant, application,
           string_agg(DISTINCT f.key, ', ' ORDER BY f.key) AS special_categories
    FROM (SELECT tenant, application,
                 unnest(map_entries(CAST(pii_counts AS MAP(VARCHAR, BIGINT)))) AS f
          FROM scope WHERE pii_total > 0)
    WHERE f.key IN (SELECT entity_type FROM special_categories)
    GROUP BY ALL
)
SELECT coalesce(s.tenant, '(none)')                     AS tenant,
       coalesce(s.application, '(none)')                AS application,
       coalesce(a.purpose, '(not registered)')          AS purpose,
       a.risk_class                                     AS declared_risk_class,
       count(*)                                         AS requests,
       count(*) FILTER (WHERE s.pii_total > 0)          AS requests_with_personal_data,
       coalesce(sp.special_categories, '')              AS special_categories,
       coalesce(a.art9_basis, '')                       AS art9_basis,
       min(s.ts_start)                                  AS first_request,
       max(s.ts_start)                                  AS last_request
FROM scope AS s
LEFT JOIN applications AS a ON a.tenant = s.tenant AND a.name = s.application
LEFT JOIN special AS sp      ON sp.tenant IS NOT DISTINCT FROM s.tenant
                            AND sp.application IS NOT DISTINCT FROM s.application
GROUP BY ALL
ORDER BY tenant, application;

-- name: data_categories
-- Categories of personal data: PII entity types found in requests (never the values);
-- special_category names the Art. 9(1) category where the type is one.
SELECT coalesce(x.tenant, '(none)')                     AS tenant,
       coalesce(x.application, '(none)')                AS application,
       x.f.key                                          AS data_category,
       c.article                                        AS special_category,
       sum(x.f.value)                                   AS findings,
       count(*)                                         AS requests
FROM (SELECT tenant, application,
             unnest(map_entries(CAST(pii_counts AS MAP(VARCHAR, BIGINT)))) AS f
      FROM scope WHERE pii_total > 0) AS x
LEFT JOIN special_categories AS c ON c.entity_type = x.f.key
GROUP BY ALL
ORDER BY tenant, application, findings DESC, data_category;

-- name: recipients
-- Recipients: providers that received requests, and MCP servers that received tool calls
-- (provider "mcp:NAME"; denied requests and calls were not forwarded).
SELECT coalesce(tenant, '(none)')                       AS tenant,
       coalesce(application, '(none)')                  AS application,
       coalesce(provider, '(none)')                     AS recipient,
       CASE WHEN route = 'mcp.tools/call' THEN 'MCP server (tool calls)'
            ELSE 'model provider' END                   AS recipient_kind,
       coalesce(region, 'unknown')                      AS region,
       third_country(region)                            AS third_country,
       count(*)                                         AS requests,
       count(*) FILTER (WHERE pii_total > 0)            AS requests_with_personal_data
FROM scope
WHERE decision = 'allow'
GROUP BY ALL
ORDER BY tenant, application, recipient, region;

-- name: detail
-- One row per application, recipient and region: the record of processing.
WITH cats AS (
    SELECT tenant, application,
           string_agg(DISTINCT f.key, ', ' ORDER BY f.key) AS data_categories,
           coalesce(string_agg(DISTINCT f.key, ', ' ORDER BY f.key)
                    FILTER (WHERE f.key IN (SELECT entity_type FROM special_categories)), '')
                                                          AS special_categories
    FROM (SELECT tenant, application,
                 unnest(map_entries(CAST(pii_counts AS MAP(VARCHAR, BIGINT)))) AS f
          FROM scope WHERE pii_total > 0)
    GROUP BY ALL
)
SELECT s.tenant,
       s.application,
       coalesce(a.purpose, '(not registered)')                    AS purpose,
       coalesce(c.data_categories, '')                            AS data_categories,
       coalesce(c.special_categories, '')                         AS special_categories,
       coalesce(a.art9_basis, '')                                 AS art9_basis,
       s.provider                                                 AS recipient,
       coalesce(s.region, 'unknown')                              AS region,
       third_country(s.region)                                    AS third_country,
       count(*)                                                   AS requests,
       count(*) FILTER (WHERE s.pii_total > 0)                    AS requests_with_personal_data,
       coalesce(rt.days, p.retention_days)                        AS retention_days
FROM scope AS s
CROSS JOIN params AS p
LEFT JOIN applications AS a  ON a.tenant = s.tenant AND a.name = s.application
LEFT JOIN cats AS c          ON c.tenant IS NOT DISTINCT FROM s.tenant
                            AND c.application IS NOT DISTINCT FROM s.application
LEFT JOIN retention AS rt    ON rt.tenant = s.tenant
WHERE s.decision = 'allow'
GROUP BY ALL
ORDER BY ALL;
