-- The ledger's roles: one per money-moving service, each owning its own schema and able to
-- touch nothing else, so that one service's credentials (or a bug in it) cannot read or
-- rewrite another's records. Run once, by an administrator, in the ledger's database:
-- the dev overlay's PostgreSQL runs it at its first start, components/cloudnative-pg at the
-- cluster's bootstrap, a DBA on a managed database by hand (docs/deploy.md, "The ledger").
-- The roles are created without login; each gets its login and password where its
-- password is kept (dev: overlays/dev/postgres/passwords.sql; CloudNativePG: its managed
-- roles; a managed database: ALTER ROLE ... LOGIN PASSWORD).

-- Nobody connects, or makes temporary tables, unless granted here.
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
-- pasarela keeps nothing in public: nobody creates or reads anything there.
REVOKE ALL ON SCHEMA public FROM PUBLIC;

-- The schema names are the services' `idempotency.postgres.schema`
-- (base/<service>/pasarela.toml). pasarela creates its tables in it (migrations), which
-- the owner may; it needs no right on the database beyond connecting.
CREATE ROLE pasarela_security NOLOGIN;
CREATE SCHEMA security AUTHORIZATION pasarela_security;

CREATE ROLE pasarela_recurring_payments NOLOGIN;
CREATE SCHEMA recurring_payments AUTHORIZATION pasarela_recurring_payments;

DO $$
BEGIN
  EXECUTE format(
    'GRANT CONNECT ON DATABASE %I TO pasarela_security, pasarela_recurring_payments',
    current_database()
  );
END
$$;
