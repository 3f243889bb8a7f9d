-- Least privilege (DESIGN.md Security): the projectors' role owns and writes the read
-- models; the API's role `cruxlog_api` may only read the `read` schema. Views read their
-- base tables with their owner's rights, so the API needs nothing on the build schemas.
-- Passwords are set by operators (`alter role cruxlog_api password ...`), never here.

do $$
begin
    if not exists (select from pg_roles where rolname = 'cruxlog_api') then
        create role cruxlog_api login;
    end if;
end
$$;

grant usage on schema read to cruxlog_api;
grant select on all tables in schema read to cruxlog_api;
-- Views created later by build swaps (by this same role) are readable too.
alter default privileges in schema read grant select on tables to cruxlog_api;
