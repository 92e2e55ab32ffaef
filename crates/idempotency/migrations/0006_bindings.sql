-- Bindings: a name bound once to a value that never changes afterwards (which tenant
-- activated a subscription), shared by every replica and never expiring.
CREATE TABLE bindings (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    bound_at   timestamptz NOT NULL DEFAULT now()
);
