-- Leases: work one replica at a time does (the withdrawal reconciler), each held by one
-- replica until it lapses or that replica renews it.
CREATE TABLE leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
