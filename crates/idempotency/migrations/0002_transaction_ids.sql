-- Every transaction id a claim was made with, kept after its record expires: the database
-- itself refuses to hand one out twice, whatever becomes of the counter it came from.
CREATE TABLE transaction_ids (
    transaction_id text PRIMARY KEY,
    key            text NOT NULL,
    claimed_at     timestamptz NOT NULL DEFAULT now()
);
