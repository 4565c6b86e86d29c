-- Credits: the system of record. Amounts are bigint micro-units (10^-6), never floats.

CREATE TABLE credit_types (
  tenant      text NOT NULL,
  key         text NOT NULL,
  name        text NOT NULL,
  unit        text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, key)
);

-- One pool per (customer, credit type, optional resource; '' = none).
CREATE TABLE pools (
  tenant            text NOT NULL,
  customer_id       text NOT NULL,
  credit_type       text NOT NULL,
  resource_id       text NOT NULL DEFAULT '',
  mode              text NOT NULL DEFAULT 'hard' CHECK (mode IN ('hard', 'soft')),
  -- Auto-recharge: when available falls below threshold, ask for (target - available), at most cap per month.
  recharge_threshold bigint,
  recharge_target    bigint,
  recharge_monthly_cap bigint,
  low_balance_threshold bigint,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, customer_id, credit_type, resource_id)
);

CREATE TABLE grants (
  tenant          text NOT NULL,
  id              text NOT NULL,
  customer_id     text NOT NULL,
  credit_type     text NOT NULL,
  resource_id     text NOT NULL DEFAULT '',
  amount          bigint NOT NULL CHECK (amount > 0),
  category        text NOT NULL CHECK (category IN ('paid', 'promotional')),
  priority        integer NOT NULL DEFAULT 100,
  effective_at    timestamptz NOT NULL,
  expires_at      timestamptz,
  cost_basis      numeric(38, 6),
  metadata        jsonb NOT NULL DEFAULT '{}',
  idempotency_key text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  voided_at       timestamptz,
  expired_at      timestamptz,
  PRIMARY KEY (tenant, id),
  UNIQUE (tenant, customer_id, idempotency_key)
);
CREATE INDEX grants_by_pool ON grants (tenant, customer_id, credit_type, resource_id);
CREATE INDEX grants_due_to_expire ON grants (expires_at) WHERE expired_at IS NULL AND voided_at IS NULL;

-- Append-only. kind: grant (+ on a grant), debit (- on a grant, or on the overdraft when grant_id is null),
-- expiry (-), void (-), adjustment (+/-), release (a hold returned; informational), overage (charged beyond
-- a hard pool's balance; informational, never debited).
CREATE TABLE ledger (
  tenant       text NOT NULL,
  seq          bigint GENERATED ALWAYS AS IDENTITY,
  id           text NOT NULL,
  customer_id  text NOT NULL,
  credit_type  text NOT NULL,
  resource_id  text NOT NULL DEFAULT '',
  kind         text NOT NULL CHECK (kind IN ('grant', 'debit', 'release', 'expiry', 'void', 'adjustment', 'overage')),
  amount       bigint NOT NULL,
  grant_id     text,
  hold_id      text,
  event_id     text,
  at           timestamptz NOT NULL,
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, seq),
  UNIQUE (tenant, id)
);
CREATE INDEX ledger_history ON ledger (tenant, customer_id, credit_type, seq DESC);
CREATE INDEX ledger_by_grant ON ledger (tenant, grant_id) WHERE grant_id IS NOT NULL;

-- Holds as the worker learned them. A rebuild of Redis reloads the active ones.
CREATE TABLE holds (
  tenant          text NOT NULL,
  id              text NOT NULL,
  customer_id     text NOT NULL,
  credit_type     text NOT NULL,
  resource_id     text NOT NULL DEFAULT '',
  amount          bigint NOT NULL,
  status          text NOT NULL CHECK (status IN ('active', 'settled', 'released', 'expired')),
  expires_at      timestamptz NOT NULL,
  idempotency_key text,
  metadata        jsonb,
  settled         bigint,
  overage         bigint,
  created_at      timestamptz NOT NULL,
  finished_at     timestamptz,
  PRIMARY KEY (tenant, id)
);
CREATE INDEX holds_active ON holds (tenant, customer_id) WHERE status = 'active';
CREATE INDEX holds_due ON holds (expires_at) WHERE status = 'active';

-- Per-grant balance kept by the worker (sum of the grant's ledger entries), so balances and rebuilds
-- do not re-sum the ledger.
CREATE TABLE grant_balances (
  tenant     text NOT NULL,
  grant_id   text NOT NULL,
  remaining  bigint NOT NULL,
  PRIMARY KEY (tenant, grant_id)
);

-- Soft pools: outstanding overdraft (debits beyond the grants), paid off by the next grant.
CREATE TABLE pool_overdrafts (
  tenant      text NOT NULL,
  customer_id text NOT NULL,
  credit_type text NOT NULL,
  resource_id text NOT NULL DEFAULT '',
  amount      bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant, customer_id, credit_type, resource_id)
);
