-- A settle or release can reach the worker before its reserve (events of one customer may be
-- reordered across publishers). The worker then inserts the hold from what the settle knows;
-- `reserved` says whether amount, expires_at, created_at, idempotency_key and metadata come from
-- the reserve itself, so the reserve, when it arrives, fills them in without touching the status.
ALTER TABLE holds ADD COLUMN reserved boolean NOT NULL DEFAULT false;

-- What the finishing event said (a settle: held, requested, debits per grant, released, overage,
-- late; a release: amount), so a rebuild of Redis can answer a retried settle or release exactly
-- as the first one was answered.
ALTER TABLE holds ADD COLUMN outcome jsonb;

-- Recently finished holds of one customer, reloaded into Redis on a rebuild.
CREATE INDEX holds_finished ON holds (tenant, customer_id, finished_at) WHERE status <> 'active';

-- What an expiry or a void took off the grant (its `expiry`/`void` ledger entry, as a magnitude),
-- so a rebuild knows retired grants without reading their ledger.
ALTER TABLE grants ADD COLUMN retired_amount bigint;
