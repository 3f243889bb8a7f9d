-- A head is written twice per command (pending mark, move), and while an append is pending it
-- carries two states; a session's state grows with its attempts. Past about 2 kB a row was
-- compressed with pglz on every write (a tenth of PostgreSQL's CPU under the load bench,
-- issue #4). Rows up to a page now stay inline and uncompressed; bigger states compress with
-- lz4, several times cheaper than pglz.
alter table aggregate_heads set (toast_tuple_target = 8160);
alter table aggregate_heads
    alter column state set compression lz4,
    alter column pending_state set compression lz4;
