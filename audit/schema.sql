-- Schema of one audit segment file (schema version 1).
-- Generated from appliance/audit/schema.py; a test keeps this file equal to it.
-- Each server process writes its own segment; readers attach all segments and see the
-- union as the view "records" (see docs/audit.md).
--
-- records columns:
--   seq               position in the segment, 0-based; the Merkle leaf index
--   kind              request | access | purge | shred | rotate_key | recover | console
--   request_id        x-request-id returned to the client
--   ts_start          request received
--   ts_end            response finished (or failed)
--   latency_ms        ts_end - ts_start in milliseconds
--   tenant            tenant of the principal
--   user_id           user of the principal
--   key_id            id of the API key used (never the key)
--   department        department of the principal
--   roles             roles of the principal
--   application       application the key belongs to
--   route             chat.completions | completions | embeddings | messages | moderations | responses | mcp.tools/call
--   stream            streaming response
--   requested_model   model the caller asked for
--   model             model finally used
--   provider          provider of the model used
--   region            region of the provider
--   prompt_tokens     input tokens
--   completion_tokens output tokens
--   total_tokens      input + output tokens
--   cost_usd          cost of the request in USD
--   decision          allow | deny | rate_limited | error (appliance.core.decision)
--   reasons           reasons of the decision (policy and denying stages)
--   policy_revision   revision of the policy bundle that decided
--   policy_rules      ids of the policy rules that fired
--   obligations       obligations the policy imposed
--   risk_class        prohibited | high | limited | minimal
--   risk_areas        AI Act areas matched: [{id, article, score}]
--   risk_drift        content does not match the declared purpose
--   declared_class    risk class declared for the application
--   pii_counts        PII findings by entity type (counts only, never values)
--   pii_total         total PII findings
--   pii_recognizers   recognizers that fired, by entity type
--   pii_languages     languages analysed
--   redaction         redaction actions and counts
--   safety_flags      safety categories flagged
--   safety_blocked    safety categories that blocked
--   status            HTTP status returned
--   error             error code/message returned (never content)
--   stages            per stage: outcome, duration and its reasons
--   extra             details of admin records (access, purge, shred, rotation); request records: an MCP call's tool and annotations, the policy input (value-free)
--   payload_key_id    data key that encrypts the payload (NULL: none stored)
--   payload_nonce     AES-GCM nonce of the payload
--   payload_ct        AES-GCM ciphertext of {request, response}
--   prev_hash         leaf hash of the previous record (genesis hash for seq 0)
--   leaf_hash         SHA256(0x00 || canonical bytes); not part of the canonical bytes
--   purged            content removed by retention purge; hash kept; not hashed

CREATE TABLE IF NOT EXISTS segment_info (
    segment_id     VARCHAR,
    schema_version INTEGER,
    host           VARCHAR,
    pid            BIGINT,
    created_at     TIMESTAMP,
    genesis_hash   BLOB
);

CREATE TABLE IF NOT EXISTS records (
    seq               BIGINT,
    kind              VARCHAR,
    request_id        VARCHAR,
    ts_start          TIMESTAMP,
    ts_end            TIMESTAMP,
    latency_ms        DOUBLE,
    tenant            VARCHAR,
    user_id           VARCHAR,
    key_id            VARCHAR,
    department        VARCHAR,
    roles             JSON,
    application       VARCHAR,
    route             VARCHAR,
    stream            BOOLEAN,
    requested_model   VARCHAR,
    model             VARCHAR,
    provider          VARCHAR,
    region            VARCHAR,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    total_tokens      BIGINT,
    cost_usd          DOUBLE,
    decision          VARCHAR,
    reasons           JSON,
    policy_revision   VARCHAR,
    policy_rules      JSON,
    obligations       JSON,
    risk_class        VARCHAR,
    risk_areas        JSON,
    risk_drift        BOOLEAN,
    declared_class    VARCHAR,
    pii_counts        JSON,
    pii_total         BIGINT,
    pii_recognizers   JSON,
    pii_languages     JSON,
    redaction         JSON,
    safety_flags      JSON,
    safety_blocked    JSON,
    status            BIGINT,
    error             VARCHAR,
    stages            JSON,
    extra             JSON,
    payload_key_id    VARCHAR,
    payload_nonce     BLOB,
    payload_ct        BLOB,
    prev_hash         BLOB,
    leaf_hash         BLOB,
    purged            BOOLEAN
);

-- Signed checkpoints: Ed25519 over the canonical JSON of
-- {v, segment_id, tree_size, root_hash, time_us, sealed, key_id}.
CREATE TABLE IF NOT EXISTS checkpoints (
    tree_size  BIGINT,
    root_hash  VARCHAR,
    time_us    BIGINT,
    sealed     BOOLEAN,
    key_id     VARCHAR,
    signature  VARCHAR
);
