-- What no honest caller ever does, refused by the database itself: a counter moved back (a
-- sequence handing out its numbers again) and a transaction id forgotten or rewritten. An
-- operator who must (a restore) does it knowingly, with the triggers disabled. And a
-- running or unknown record written with a lifetime is kept until it is settled.
UPDATE records SET expires_at = 'infinity'
  WHERE key IN (SELECT member FROM open_keys) AND expires_at <> 'infinity';

CREATE FUNCTION counters_only_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.last < OLD.last THEN
    RAISE EXCEPTION 'counter % may not go back from % to %', OLD.name, OLD.last, NEW.last;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER counters_only_forward BEFORE UPDATE ON counters
  FOR EACH ROW EXECUTE FUNCTION counters_only_forward();

CREATE FUNCTION transaction_ids_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'transaction ids are kept: % refused', TG_OP;
END
$$;
CREATE TRIGGER transaction_ids_kept BEFORE UPDATE OR DELETE ON transaction_ids
  FOR EACH ROW EXECUTE FUNCTION transaction_ids_kept();
CREATE TRIGGER transaction_ids_not_truncated BEFORE TRUNCATE ON transaction_ids
  FOR EACH STATEMENT EXECUTE FUNCTION transaction_ids_kept();
