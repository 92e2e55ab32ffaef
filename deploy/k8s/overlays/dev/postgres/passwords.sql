-- Run by the dev PostgreSQL at its first start, after the ledger's roles
-- (deploy/k8s/ledger/roles.sql): each service's role may log in, with the password in the
-- service's own ledger Secret (mounted under /etc/postgres/roles/), the one its pods read.
\set password `cat /etc/postgres/roles/security/password`
ALTER ROLE pasarela_security LOGIN PASSWORD :'password';
\set password `cat /etc/postgres/roles/recurring-payments/password`
ALTER ROLE pasarela_recurring_payments LOGIN PASSWORD :'password';
\unset password
