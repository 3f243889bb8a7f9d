-- Optimistic concurrency on Kafka (W3, ADR 0009): the head of each aggregate the API writes.
-- A command locks the row, checks the expected version, marks the append it is about to make
-- as pending, appends to Kafka, then moves the head. A pending append whose writer died is
-- settled from the log itself (was it appended or not), never guessed.
create table aggregate_heads (
    aggregate_id    uuid primary key,
    aggregate_type  text not null,
    -- Last version Kafka acknowledged (0: none yet).
    version         bigint not null,
    -- What the decision logic needs to know (e.g. a session's owner, whether it ended, its
    -- attempts): the state after `version`.
    state           jsonb,
    pending_version bigint,
    pending_state   jsonb,
    pending_since   timestamptz,
    -- The position token (R3) of the last event, for commands that append nothing new.
    last_position   text,
    updated_at      timestamptz not null default now()
);

