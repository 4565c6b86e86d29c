-- Raw events, partitioned by event time (one partition per UTC day, created by the worker as
-- events for a day arrive, dropped past the retention). data is json, not jsonb: the archive
-- keeps the text it came as and is not queried per event, so it skips jsonb's conversion.
CREATE TABLE metering.events (
  tenant text NOT NULL,
  time timestamptz NOT NULL,
  source text NOT NULL,
  id text NOT NULL,
  type text NOT NULL,
  subject text NOT NULL,
  data json,
  ingested_at timestamptz NOT NULL
) PARTITION BY RANGE (time);

-- Deduplication: (source, id) seen per tenant. Kept while an event of that time could still be
-- accepted (the lateness), then pruned by time.
CREATE TABLE metering.seen (
  tenant text NOT NULL,
  source text NOT NULL,
  id text NOT NULL,
  time timestamptz NOT NULL,
  PRIMARY KEY (tenant, source, id)
);
CREATE INDEX seen_time ON metering.seen USING brin (time);

-- Aggregates per meter (and its definition's version), subject, minute and group. Every
-- aggregation is answered from these columns; txid orders them for the export.
CREATE TABLE metering.aggregates (
  tenant text NOT NULL,
  meter text NOT NULL,
  meter_version bigint NOT NULL,
  subject text NOT NULL,
  window_start timestamptz NOT NULL,
  group_key text NOT NULL,
  groups jsonb NOT NULL,
  sum numeric NOT NULL,
  count bigint NOT NULL,
  min numeric,
  max numeric,
  latest numeric,
  latest_at timestamptz,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  PRIMARY KEY (tenant, meter, meter_version, subject, window_start, group_key)
);
CREATE INDEX aggregates_txid ON metering.aggregates (tenant, txid);

-- The distinct values of UNIQUE_COUNT meters, per minute: a distinct count over any range is
-- exact.
CREATE TABLE metering.unique_values (
  tenant text NOT NULL,
  meter text NOT NULL,
  meter_version bigint NOT NULL,
  subject text NOT NULL,
  window_start timestamptz NOT NULL,
  group_key text NOT NULL,
  value text NOT NULL,
  PRIMARY KEY (tenant, meter, meter_version, subject, window_start, group_key, value)
);
