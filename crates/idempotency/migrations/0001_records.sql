-- The records of money-moving calls under their callers' keys, the keys still open (running
-- or unknown) and the counters sequences are reserved from. Values are sealed records:
-- pasarela refuses one a holder of its record key did not write.
CREATE TABLE records (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX records_expiry ON records (expires_at);

CREATE TABLE open_keys (
    set_name text NOT NULL,
    member   text NOT NULL,
    PRIMARY KEY (set_name, member)
);

CREATE TABLE counters (
    name text PRIMARY KEY,
    last bigint NOT NULL
);
