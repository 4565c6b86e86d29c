-- The data plane's configuration: one row per document (a feature, a plan, a budget...), the
-- version that last changed it, and a tombstone when it was deleted, so replicas that ask
-- "what changed since version N" also learn about deletions.
CREATE TABLE versions (
  tenant  text PRIMARY KEY,
  version bigint NOT NULL
);

CREATE TABLE documents (
  tenant     text NOT NULL,
  kind       text NOT NULL,
  id         text NOT NULL,
  body       jsonb,
  deleted    boolean NOT NULL DEFAULT false,
  version    bigint NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (tenant, kind, id)
);
CREATE INDEX documents_by_version ON documents (tenant, version);

-- Who changed what, and when: every accepted change, in version order.
CREATE TABLE audit (
  tenant  text NOT NULL,
  version bigint NOT NULL,
  kind    text NOT NULL,
  id      text NOT NULL,
  action  text NOT NULL CHECK (action IN ('put', 'delete')),
  body    jsonb,
  actor   text NOT NULL,
  at      timestamptz NOT NULL,
  PRIMARY KEY (tenant, version)
);
