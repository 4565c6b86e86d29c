-- A data plane's side of the uplink: the control plane's configuration version it applied
-- last, and how far its aggregates have been sent up (the metering export's cursor).
CREATE TABLE state (
  tenant          text PRIMARY KEY,
  applied_version bigint NOT NULL DEFAULT 0,
  export_cursor   text NOT NULL DEFAULT '0',
  updated_at      timestamptz NOT NULL DEFAULT now()
);
