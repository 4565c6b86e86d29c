-- A settle or release can reach the worker before its reserve (events of one customer may be
-- reordered across publishers). The worker then inserts the hold from what the settle knows;
-- `reserved` says whether amount, expires_at, created_at, idempotency_key and metadata come from
-- the reserve itself, so the reserve, when it arrives, fills them in without touching the status.
ALTER TABLE holds ADD COLUMN reserved boolean NOT NULL DEFAULT false;

-- Recently finished holds of one customer, reloaded into Redis on a rebuild so that a retried
-- settle or release still answers as the first one did.
CREATE INDEX holds_finished ON holds (tenant, customer_id, finished_at) WHERE status <> 'active';
