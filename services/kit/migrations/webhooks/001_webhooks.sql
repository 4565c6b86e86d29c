-- Webhooks: endpoints per tenant, the events handed to them, and one delivery row per
-- (event, endpoint), which is both the retry state (so a restarted dispatcher resumes) and the
-- delivery log the API shows.

CREATE TABLE endpoints (
  tenant      text NOT NULL,
  id          text NOT NULL,
  url         text NOT NULL,
  -- Event types delivered: exact (`credits.balance.low`), a prefix (`credits.*`) or every type (`*`).
  events      text[] NOT NULL,
  -- Kept as is, since signing needs the secret itself (a hash would not do). The API returns it
  -- once, when it generates it, and never on a read.
  secret      text NOT NULL,
  description text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, id)
);

-- Each event once, with the exact body every endpoint receives (the signature covers these bytes).
CREATE TABLE events (
  tenant      text NOT NULL,
  id          text NOT NULL,
  type        text NOT NULL,
  body        text NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (tenant, id)
);

CREATE TABLE deliveries (
  seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  tenant          text NOT NULL,
  event_id        text NOT NULL,
  endpoint_id     text NOT NULL,
  event_type      text NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  -- Attempts started; one is counted when it is claimed, so a crash mid-attempt still counts it.
  attempts        integer NOT NULL DEFAULT 0,
  response_code   integer,
  last_error      text,
  -- While pending: when the next attempt is due (during an attempt: when its lease ends).
  next_attempt_at timestamptz,
  delivered_at    timestamptz,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  PRIMARY KEY (tenant, event_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_endpoint ON deliveries (tenant, endpoint_id, seq DESC);
