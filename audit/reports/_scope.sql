-- Scope shared by every report: which audit records a report rests on.
--
-- The exporter fills five small tables before it runs a report's queries:
--   params       one row: period_start, period_end (half-open, UTC), tenant, application
--                (NULL = all), bucket ('hour' | 'day' | 'week' | 'month'), request_ids
--                (incident reports), retention_days (configured default)
--   coverage     per segment: tree_size of the newest checkpoint whose Ed25519 signature
--                is valid; only records BELOW that size are reported, so every number in
--                a report rests on signed data, and two exports that name the same
--                checkpoints hold the same numbers
--   applications the application registry (tenant, name, purpose, annex_iii, risk_class,
--                art9_basis: the registered GDPR Art. 9(2) bases as text, or NULL)
--   retention    per-tenant retention overrides (tenant, days)
--   special_categories the GDPR Art. 9(1) special categories among the PII entity types
--                (entity_type, article), from appliance/pii/special/categories.py
-- "records" is the union of all audit segments (see audit/schema.sql), with segment_id.

-- name: scope
CREATE OR REPLACE TEMP VIEW scope AS
SELECT r.*,
       date_trunc(p.bucket, r.ts_start) AS bucket
FROM records AS r
JOIN coverage AS c
  ON c.segment_id = r.segment_id
 AND r.seq < c.tree_size                      -- covered by a signed checkpoint
CROSS JOIN params AS p
WHERE r.kind = 'request'                      -- admin records (access, purge, ...) are not requests
  AND NOT coalesce(r.purged, false)           -- content removed by retention purge
  AND r.ts_start >= p.period_start
  AND r.ts_start <  p.period_end
  AND (p.tenant IS NULL OR r.tenant = p.tenant)
  AND (p.application IS NULL OR r.application = p.application);

-- name: third_country
-- GDPR Chapter V: a transfer leaves the EU/EEA unless the provider region is on-premises
-- or inside the EU/EEA. Region names are those of the provider configuration.
CREATE OR REPLACE TEMP MACRO third_country(region) AS
  CASE
    WHEN region IS NULL OR lower(region) IN ('', 'unknown') THEN 'unknown'
    WHEN lower(region) IN ('on-premises', 'local', 'eu', 'eea')
      OR lower(region) LIKE 'eu-%'            -- AWS eu-central-1, eu-west-1, ...
      OR lower(region) LIKE 'europe-%'        -- Google europe-west4, ...
      OR lower(region) LIKE 'eu.%'
      OR lower(region) IN ('at','be','bg','hr','cy','cz','dk','ee','fi','fr','de','gr','hu',
                           'ie','it','lv','lt','lu','mt','nl','pl','pt','ro','sk','si','es',
                           'se','is','li','no',
                           'westeurope','northeurope','germanywestcentral','francecentral',
                           'swedencentral','italynorth','polandcentral','spaincentral',
                           'norwayeast')
      THEN 'no'
    ELSE 'yes'
  END;

-- name: segments_in_scope
-- The segments that hold at least one record of the report (the data it rests on).
SELECT segment_id,
       count(*)          AS records,
       min(ts_start)     AS first_record,
       max(ts_start)     AS last_record
FROM scope
GROUP BY segment_id
ORDER BY segment_id;

-- name: not_covered
-- Records of the period written after the newest signed checkpoint of their segment:
-- left out of the report (the next checkpoint will cover them).
SELECT count(*) AS records
FROM records AS r
LEFT JOIN coverage AS c ON c.segment_id = r.segment_id
CROSS JOIN params AS p
WHERE r.kind = 'request'
  AND r.seq >= coalesce(c.tree_size, 0)
  AND r.ts_start >= p.period_start AND r.ts_start < p.period_end
  AND (p.tenant IS NULL OR r.tenant = p.tenant)
  AND (p.application IS NULL OR r.application = p.application);
