-- Which command's append a pending mark stands for (a fresh id per command). Moving the head
-- after the append and back-dating a mark after a failed append both name it, so neither can
-- touch a mark another writer made at the same version after this one was settled.
alter table aggregate_heads add column pending_writer uuid;
