-- Budget alerts: a row per threshold a counter crossed in a period, so each fires once. The
-- worker inserts them in the commit that crossed; a background loop publishes them to the
-- EVENTS stream (webhooks follow from there) and marks them published.
CREATE TABLE alerts (
  tenant       text NOT NULL,
  id           text NOT NULL,
  budget_id    text NOT NULL,
  customer_id  text NOT NULL,
  counter_id   text NOT NULL,
  window_start bigint NOT NULL,
  threshold    numeric NOT NULL,
  used         bigint NOT NULL,
  "limit"      bigint NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz,
  PRIMARY KEY (tenant, id)
);
CREATE INDEX alerts_unpublished ON alerts (created_at) WHERE published_at IS NULL;
