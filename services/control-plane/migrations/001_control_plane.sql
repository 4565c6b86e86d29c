-- Tenants: each runs a data plane that connects outbound to the hub with its own NATS user,
-- limited to allot.<tenant>.>. Only the bcrypt hash of its password is kept.
CREATE TABLE tenants (
  id            text PRIMARY KEY,
  name          text NOT NULL,
  nats_user     text NOT NULL UNIQUE,
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- What each data plane last told the hub: the configuration version it applied, its health.
CREATE TABLE tenant_status (
  tenant          text PRIMARY KEY,
  applied_version bigint NOT NULL DEFAULT 0,
  health          jsonb,
  last_seen       timestamptz
);

-- Aggregates the data planes exported (never events): one row per meter, customer, minute and
-- group; a re-export upserts, the higher version wins.
CREATE TABLE aggregates (
  tenant        text NOT NULL,
  meter         text NOT NULL,
  meter_version bigint NOT NULL,
  customer_id   text NOT NULL,
  window_start  timestamptz NOT NULL,
  group_by      jsonb NOT NULL,
  group_key     text NOT NULL,
  value         numeric NOT NULL,
  count         bigint NOT NULL,
  version       numeric NOT NULL,
  PRIMARY KEY (tenant, meter, meter_version, customer_id, window_start, group_key)
);
