-- The API's write-side state (ADR 0008). Runs as `cruxlog_api` with `search_path = api`.
-- Nothing here is a source of truth for the domain: the log is. Erasing a user deletes their
-- rows here.

-- Email index: a unique claim on an email address (as an HMAC, never the address) that makes
-- registration race-free across API instances, and the credential to check at log-in.
create table accounts (
    email_key    bytea primary key,
    user_id      uuid not null unique,
    password_phc text not null,
    -- 'pending' until the UserRegistered event is acknowledged, then 'active'.
    state        text not null check (state in ('pending', 'active')),
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);

-- Rotating refresh tokens (stored as SHA-256 of the token). Each refresh uses one and issues
-- the next in the same family; presenting a used one revokes the whole family.
create table refresh_tokens (
    token_hash bytea primary key,
    family_id  uuid not null,
    user_id    uuid not null,
    issued_at  timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at    timestamptz,
    revoked_at timestamptz
);
create index refresh_tokens_family_id on refresh_tokens (family_id);
create index refresh_tokens_user_id on refresh_tokens (user_id);

-- Idempotency keys (W2): the first response to (caller, key) is stored and replayed.
create table idempotency_keys (
    caller       text not null,
    key          text not null,
    request_hash bytea not null,
    -- Set while the first request runs; a retry meanwhile is told to wait.
    locked_until timestamptz,
    status       smallint,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz not null default now(),
    primary key (caller, key)
);
create index idempotency_keys_created_at on idempotency_keys (created_at);
