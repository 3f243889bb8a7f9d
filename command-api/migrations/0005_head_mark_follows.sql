-- A mark may complete the move of the acknowledged append it follows (ADR 0013): the write
-- statement proposes that append's writer here (`excluded.mark_follows`), and the
-- compare-and-set accepts a head still pending by it. A parameter carried in the proposed
-- row, never read from a stored one: every update clears it.
alter table aggregate_heads add column mark_follows uuid;
