-- Who holds each open key: a hash of the caller, so that the keys one caller holds open
-- (calls running or outcomes unknown) are bounded. Keys opened before this migration
-- belong to nobody and count against no caller.
ALTER TABLE open_keys ADD COLUMN owner text NOT NULL DEFAULT '';
CREATE INDEX open_keys_owner ON open_keys (set_name, owner);
