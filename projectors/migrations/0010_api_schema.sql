-- The command API keeps a little write-side state of its own (the email index, refresh
-- tokens, idempotency keys): not read models, so not in `read`. The projectors bootstrap the
-- database (roles, schemas); the API owns the tables inside `api` through its own
-- migrations (command-api/migrations), run as `cruxlog_api`.

create schema if not exists api authorization cruxlog_api;
