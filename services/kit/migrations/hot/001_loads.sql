-- Which customers have been loaded into the hot state, by each part of it (credits,
-- governance). A customer found missing there that is listed here was lost by the hot state
-- (Redis flushed, restarted, or one Redis Cluster shard lost), and what gates published just
-- before that loss may still be on its way to the stream: its reload waits for it.

CREATE TABLE loads (
  part text NOT NULL,
  tenant text NOT NULL,
  customer_id text NOT NULL,
  first_loaded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (part, tenant, customer_id)
);
