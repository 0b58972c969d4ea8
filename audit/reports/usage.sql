-- Usage report: requests, tokens and cost by tenant, department, application, model,
-- provider, over time. Every query reads the view "scope" (see _scope.sql): requests of
-- the period and filters, covered by a signed checkpoint. Costs are in USD as recorded
-- per request at the time it was served.

-- name: summary
SELECT count(*)                                        AS requests,
       count(*) FILTER (WHERE decision = 'allow')      AS allowed,
       count(*) FILTER (WHERE decision = 'deny')       AS denied,
       count(*) FILTER (WHERE decision = 'rate_limited') AS rate_limited,
       count(*) FILTER (WHERE decision = 'error')      AS errors,
       coalesce(sum(prompt_tokens), 0)                 AS prompt_tokens,
       coalesce(sum(completion_tokens), 0)             AS completion_tokens,
       coalesce(sum(total_tokens), 0)                  AS total_tokens,
       round(coalesce(sum(cost_usd), 0), 6)            AS cost_usd,
       count(DISTINCT tenant)                          AS tenants,
       count(DISTINCT application)                     AS applications,
       count(DISTINCT model)                           AS models
FROM scope;

-- name: over_time
SELECT bucket                                          AS period_start,
       count(*)                                        AS requests,
       count(*) FILTER (WHERE decision = 'deny')       AS denied,
       coalesce(sum(total_tokens), 0)                  AS total_tokens,
       round(coalesce(sum(cost_usd), 0), 6)            AS cost_usd
FROM scope
GROUP BY bucket
ORDER BY bucket;

-- name: by_tenant
SELECT coalesce(tenant, '(none)')                      AS tenant,
       count(*)                                        AS requests,
       coalesce(sum(total_tokens), 0)                  AS total_tokens,
       round(coalesce(sum(cost_usd), 0), 6)            AS cost_usd
FROM scope
GROUP BY ALL
ORDER BY cost_usd DESC, requests DESC, tenant;

-- name: by_department
SELECT coalesce(tenant, '(none)')                      AS tenant,
       coalesce(department, '(none)')                  AS department,
       count(*)                                        AS requests,
       coalesce(sum(total_tokens), 0)                  AS total_tokens,
       round(coalesce(sum(cost_usd), 0), 6)            AS cost_usd
FROM scope
GROUP BY ALL
ORDER BY cost_usd DESC, requests DESC, tenant, department;

-- name: by_application
SELECT coalesce(tenant, '(none)')                      AS tenant,
       coalesce(application, '(none)')                 AS application,
       count(*)                                        AS requests,
       coalesce(sum(total_tokens), 0)                  AS total_tokens,
       round(coalesce(sum(cost_usd), 0), 6)            AS cost_usd
FROM scope
GROUP BY ALL
ORDER BY cost_usd DESC, requests DESC, tenant, application;

-- name: by_model
SELECT coalesce(model, '(none)')                       AS model,
       coalesce(provider, '(none)')                    AS provider,
       count(*)                                        AS requests,
       coalesce(sum(prompt_tokens), 0)                 AS prompt_tokens,
       coalesce(sum(completion_tokens), 0)             AS completion_tokens,
       round(coalesce(sum(cost_usd), 0), 6)            AS cost_usd
FROM scope
GROUP BY ALL
ORDER BY cost_usd DESC, requests DESC, model, provider;

-- name: detail
-- One row per time bucket and (tenant, department, application, model, provider).
SELECT bucket                                          AS period_start,
       tenant, department, application, model, provider,
       count(*)                                        AS requests,
       count(*) FILTER (WHERE decision = 'deny')       AS denied,
       coalesce(sum(prompt_tokens), 0)                 AS prompt_tokens,
       coalesce(sum(completion_tokens), 0)             AS completion_tokens,
       coalesce(sum(total_tokens), 0)                  AS total_tokens,
       round(coalesce(sum(cost_usd), 0), 6)            AS cost_usd
FROM scope
GROUP BY ALL
ORDER BY ALL;
