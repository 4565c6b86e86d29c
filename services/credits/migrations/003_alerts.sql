-- Alerts: low balance, depleted, expired grant, and auto-recharge requests (src/alerts.ts).

-- Pools whose balance moved since their alerts were last evaluated. The ledger worker marks the
-- pools of each group commit inside that commit's transaction; the trigger below marks the pool
-- of a new grant, which the grants route writes outside the worker. The alert evaluator claims
-- and deletes marks, so a crash anywhere leaves them for the next pass.
CREATE TABLE alert_pending (
  tenant      text NOT NULL,
  customer_id text NOT NULL,
  credit_type text NOT NULL,
  resource_id text NOT NULL DEFAULT '',
  marked_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, customer_id, credit_type, resource_id)
);

-- One state machine per (pool, kind) (src/domain/alerts.ts): fired, and waiting to re-arm, or not.
-- `crossings` numbers the firings, which makes each crossing's event id deterministic.
CREATE TABLE alert_state (
  tenant          text NOT NULL,
  customer_id     text NOT NULL,
  credit_type     text NOT NULL,
  resource_id     text NOT NULL DEFAULT '',
  kind            text NOT NULL CHECK (kind IN ('low', 'depleted', 'recharge')),
  fired           boolean NOT NULL DEFAULT false,
  crossings       integer NOT NULL DEFAULT 0,
  -- Recharge: what was requested in `month` ('YYYY-MM', UTC), bounded by the monthly cap.
  month           text,
  month_requested bigint NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, customer_id, credit_type, resource_id, kind)
);

-- Every alert raised, with the exact event JSON: the outbox to the EVENTS stream (published_at is
-- null until the stream stored it) and the alert history. A row's id never repeats, so an expiry
-- the worker sees twice (a redelivered batch) is raised once.
CREATE TABLE alerts (
  seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  tenant       text NOT NULL,
  id           text NOT NULL,
  type         text NOT NULL,
  customer_id  text NOT NULL,
  credit_type  text NOT NULL,
  resource_id  text NOT NULL DEFAULT '',
  event        text NOT NULL,
  occurred_at  timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz,
  PRIMARY KEY (tenant, id)
);
CREATE INDEX alerts_unpublished ON alerts (seq) WHERE published_at IS NULL;
CREATE INDEX alerts_by_pool ON alerts (tenant, customer_id, credit_type, seq DESC);

-- A grant raises a balance without passing through the worker: mark its pool, so an alert
-- waiting below its threshold re-arms (and a grant too small to lift it is seen too).
CREATE FUNCTION mark_pool_for_alerts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO credits.alert_pending (tenant, customer_id, credit_type, resource_id)
  VALUES (NEW.tenant, NEW.customer_id, NEW.credit_type, NEW.resource_id)
  ON CONFLICT (tenant, customer_id, credit_type, resource_id) DO UPDATE SET marked_at = now();
  RETURN NULL;
END
$$;
CREATE TRIGGER grants_mark_pool_for_alerts AFTER INSERT ON grants
  FOR EACH ROW EXECUTE FUNCTION mark_pool_for_alerts();
