-- Every decision the gate made, allowed or denied, with why; an allowed one is a reservation
-- whose life (active, settled, released, expired) follows. Rows arrive from the hot-path
-- stream; a settle or release that overtakes its decision leaves a placeholder row (feature
-- null) that the decision fills in.
CREATE TABLE decisions (
  tenant          text NOT NULL,
  id              text NOT NULL,
  customer_id     text NOT NULL,
  at              timestamptz,
  feature         text,
  units           bigint,
  dimensions      jsonb,
  decision        text CHECK (decision IN ('allow', 'deny')),
  reason          text,
  decided_by      text,
  cost            bigint,
  credit_type     text,
  resource_id     text,
  idempotency_key text,
  request_hash    text,
  expires_at      timestamptz,
  parts           jsonb,
  answer          jsonb,
  status          text CHECK (status IN ('active', 'settled', 'released', 'expired')),
  settled_units   bigint,
  settled_cost    bigint,
  settle_answer   jsonb,
  finished_at     timestamptz,
  PRIMARY KEY (tenant, id)
);
CREATE INDEX decisions_by_customer ON decisions (tenant, customer_id, at DESC, id);
CREATE INDEX decisions_by_time ON decisions (tenant, at DESC, id);
CREATE INDEX decisions_active ON decisions (tenant, customer_id) WHERE status = 'active';
CREATE INDEX decisions_replayable ON decisions (tenant, customer_id, at) WHERE idempotency_key IS NOT NULL;

-- What each counter used per window (calendar) or bucket (rolling), from settles (budgets,
-- entitlement limits) and from allowed decisions (rate limits). A rebuild of the hot state
-- reads the current window from here.
CREATE TABLE usage (
  tenant       text NOT NULL,
  customer_id  text NOT NULL,
  counter_id   text NOT NULL,
  window_start bigint NOT NULL,
  used         bigint NOT NULL,
  -- What settles above their holds would have added past a hard limit: recorded, not counted.
  overage      bigint NOT NULL DEFAULT 0,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, customer_id, counter_id, window_start)
);

-- Records applied, by id, so a redelivered message changes nothing.
CREATE TABLE applied (
  tenant text NOT NULL,
  id     text NOT NULL,
  at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, id)
);
