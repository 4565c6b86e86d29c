/** The UI's pages: each reads and writes through the public API, nothing else. */
import { useMemo, useState } from 'react';
import {
  api,
  type Balance,
  type Block,
  type Budget,
  type BudgetStatus,
  type Customer,
  type Entity,
  type Feature,
  type LedgerEntry,
  type Meter,
  type Plan,
  type Tenant,
  type UsageRow,
} from './api.ts';
import { ChartView } from './chart.tsx';
import { useAction, useGet } from './hooks.ts';

const when = (iso: string) => new Date(iso).toLocaleString();
const enc = encodeURIComponent;

/** `team=t1, agent=*` as a scope object. */
function parseScope(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => {
        const at = p.indexOf('=');
        return [p.slice(0, at).trim(), p.slice(at + 1).trim()];
      }),
  );
}

function TextField(props: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  name?: string;
  required?: boolean;
  size?: number;
}) {
  return (
    <label>
      {props.label}
      <input
        name={props.name}
        value={props.value}
        onChange={(e) => props.onChange(e.target.value)}
        required={props.required}
        size={props.size}
      />
    </label>
  );
}

function ErrorLine({ error }: { error: string | null }) {
  return error ? <div className="error">{error}</div> : null;
}

// ---------------------------------------------------------------------------------------------

export function CustomersPage() {
  const customers = useGet<{ items: Customer[] }>('/v1/customers');
  const plans = useGet<{ items: Plan[] }>('/v1/plans');
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const [plan, setPlan] = useState('');
  const create = useAction(customers.reload);
  return (
    <section>
      <h2>Customers</h2>
      <table>
        <thead>
          <tr>
            <th>id</th>
            <th>name</th>
            <th>updated</th>
          </tr>
        </thead>
        <tbody>
          {customers.data?.items.map((c) => (
            <tr key={c.customerId}>
              <td>
                <a href={`#customers/${enc(c.customerId)}`}>{c.customerId}</a>
              </td>
              <td>{c.name}</td>
              <td>{when(c.updatedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        aria-label="new customer"
        onSubmit={(e) => {
          e.preventDefault();
          void create.run(async () => {
            await api('PUT', `/v1/customers/${enc(id)}`, { name: name || id });
            if (plan) await api('PUT', `/v1/customers/${enc(id)}/subscription`, { plan });
            setId('');
            setName('');
          });
        }}
      >
        <TextField label="id" name="customerId" value={id} onChange={setId} required />
        <TextField label="name" name="customerName" value={name} onChange={setName} />
        <label>
          plan
          <select name="plan" value={plan} onChange={(e) => setPlan(e.target.value)}>
            <option value="">(none)</option>
            {plans.data?.items.map((p) => (
              <option key={p.key} value={p.key}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Add customer</button>
      </form>
      <ErrorLine error={create.error ?? customers.error} />
    </section>
  );
}

export function CustomerPage({ id }: { id: string }) {
  const customer = useGet<Customer>(`/v1/customers/${enc(id)}`);
  const subscription = useGet<{ plan: string; addons: string[] }>(`/v1/customers/${enc(id)}/subscription`);
  const balances = useGet<{ balances: Balance[] }>(`/v1/customers/${enc(id)}/balances`, 2000);
  const ledger = useGet<{ entries: LedgerEntry[] }>(`/v1/customers/${enc(id)}/ledger`, 2000);
  const entities = useGet<{ items: Entity[] }>(`/v1/customers/${enc(id)}/entities`);
  const [creditType, setCreditType] = useState('credits');
  const [amount, setAmount] = useState('');
  const grant = useAction(() => {
    balances.reload();
    ledger.reload();
  });
  const [entityId, setEntityId] = useState('');
  const [entityType, setEntityType] = useState('team');
  const [parentId, setParentId] = useState('');
  const addEntity = useAction(entities.reload);
  return (
    <>
      <section>
        <h2>
          {customer.data?.name ?? id} <span className="pill">{id}</span>
        </h2>
        <p>
          Plan: <strong>{subscription.data?.plan ?? 'none'}</strong>
          {subscription.data?.addons.length ? ` + ${subscription.data.addons.join(', ')}` : ''}
        </p>
      </section>
      <div className="grid">
        <section>
          <h2>Balances</h2>
          {balances.data?.balances.map((b) => (
            <div key={b.creditType} data-testid={`balance-${b.creditType}`}>
              <div className="big" data-available={b.available}>
                {b.available} <small>{b.creditType} available</small>
              </div>
              <div>held {b.held}</div>
            </div>
          ))}
          {balances.data?.balances.length === 0 && <p>No credits yet.</p>}
          <form
            aria-label="grant credits"
            onSubmit={(e) => {
              e.preventDefault();
              void grant.run(async () => {
                await api('POST', `/v1/customers/${enc(id)}/grants`, {
                  creditType,
                  amount,
                  category: 'paid',
                  idempotencyKey: crypto.randomUUID(),
                });
                setAmount('');
              });
            }}
          >
            <TextField label="credit type" name="creditType" value={creditType} onChange={setCreditType} />
            <TextField label="amount" name="amount" value={amount} onChange={setAmount} required />
            <button type="submit">Grant</button>
          </form>
          <ErrorLine error={grant.error} />
        </section>
        <section>
          <h2>Entity tree</h2>
          <EntityTree entities={entities.data?.items ?? []} parent={undefined} />
          <form
            aria-label="new entity"
            onSubmit={(e) => {
              e.preventDefault();
              void addEntity.run(() =>
                api('PUT', `/v1/customers/${enc(id)}/entities/${enc(entityId)}`, {
                  type: entityType,
                  ...(parentId ? { parentId } : {}),
                }),
              );
            }}
          >
            <TextField label="id" value={entityId} onChange={setEntityId} required />
            <label>
              type
              <select value={entityType} onChange={(e) => setEntityType(e.target.value)}>
                {['team', 'user', 'agent', 'project'].map((t) => (
                  <option key={t}>{t}</option>
                ))}
              </select>
            </label>
            <TextField label="parent" value={parentId} onChange={setParentId} />
            <button type="submit">Add</button>
          </form>
          <ErrorLine error={addEntity.error} />
        </section>
      </div>
      <section>
        <h2>Ledger</h2>
        <table>
          <thead>
            <tr>
              <th>when</th>
              <th>kind</th>
              <th>amount</th>
              <th>credit type</th>
              <th>reservation</th>
            </tr>
          </thead>
          <tbody>
            {ledger.data?.entries.slice(0, 50).map((e) => (
              <tr key={e.id}>
                <td>{when(e.at)}</td>
                <td>{e.kind}</td>
                <td>{e.amount}</td>
                <td>{e.creditType}</td>
                <td>{e.reservationId ? e.reservationId.slice(-12) : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}

function EntityTree({ entities, parent }: { entities: Entity[]; parent: string | undefined }) {
  const children = entities.filter((e) => e.parentId === parent);
  if (children.length === 0) return null;
  return (
    <ul className="tree">
      {children.map((e) => (
        <li key={e.entityId}>
          {e.entityId} <span className="pill">{e.type}</span>
          <EntityTree entities={entities} parent={e.entityId} />
        </li>
      ))}
    </ul>
  );
}

// ---------------------------------------------------------------------------------------------

export function CatalogPage() {
  const features = useGet<{ items: Feature[] }>('/v1/features');
  const plans = useGet<{ items: Plan[] }>('/v1/plans');
  const [fKey, setFKey] = useState('');
  const [fType, setFType] = useState('metered');
  const addFeature = useAction(features.reload);
  const [pKey, setPKey] = useState('');
  const [pName, setPName] = useState('');
  const [pFeature, setPFeature] = useState('');
  const [pRate, setPRate] = useState('');
  const [pCreditType, setPCreditType] = useState('credits');
  const addPlan = useAction(plans.reload);
  return (
    <div className="grid">
      <section>
        <h2>Features</h2>
        <table>
          <tbody>
            {features.data?.items.map((f) => (
              <tr key={f.key}>
                <td>{f.key}</td>
                <td>{f.name}</td>
                <td>
                  <span className="pill">{f.type}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <form
          aria-label="new feature"
          onSubmit={(e) => {
            e.preventDefault();
            void addFeature.run(() => api('PUT', `/v1/features/${enc(fKey)}`, { name: fKey, type: fType }));
          }}
        >
          <TextField label="key" name="featureKey" value={fKey} onChange={setFKey} required />
          <label>
            type
            <select name="featureType" value={fType} onChange={(e) => setFType(e.target.value)}>
              {['metered', 'boolean', 'numeric', 'enum'].map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
          </label>
          <button type="submit">Add feature</button>
        </form>
        <ErrorLine error={addFeature.error} />
      </section>
      <section>
        <h2>Plans</h2>
        <table>
          <tbody>
            {plans.data?.items.map((p) => (
              <tr key={p.key}>
                <td>{p.key}</td>
                <td>{p.name}</td>
                <td>{p.entitlements.map((e) => e.feature).join(', ')}</td>
                <td>
                  {p.creditRates.map((r) => `${r.rate ?? r.formula} ${r.creditType}/${r.feature}`).join(', ')}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <form
          aria-label="new plan"
          onSubmit={(e) => {
            e.preventDefault();
            void addPlan.run(() =>
              api('PUT', `/v1/plans/${enc(pKey)}`, {
                name: pName || pKey,
                entitlements: pFeature ? [{ feature: pFeature }] : [],
                creditRates:
                  pFeature && pRate ? [{ feature: pFeature, creditType: pCreditType, rate: pRate }] : [],
              }),
            );
          }}
        >
          <TextField label="key" name="planKey" value={pKey} onChange={setPKey} required />
          <TextField label="name" name="planName" value={pName} onChange={setPName} />
          <label>
            feature
            <select name="planFeature" value={pFeature} onChange={(e) => setPFeature(e.target.value)}>
              <option value="">(none)</option>
              {features.data?.items.map((f) => (
                <option key={f.key}>{f.key}</option>
              ))}
            </select>
          </label>
          <TextField label="credits per unit" name="planRate" value={pRate} onChange={setPRate} size={8} />
          <TextField label="credit type" value={pCreditType} onChange={setPCreditType} size={10} />
          <button type="submit">Save plan</button>
        </form>
        <ErrorLine error={addPlan.error} />
      </section>
    </div>
  );
}

// ---------------------------------------------------------------------------------------------

function BudgetBurn({ budget }: { budget: Budget }) {
  const status = useGet<BudgetStatus>(`/v1/budgets/${enc(budget.budgetId)}/status`, 3000);
  const counters = status.data?.counters ?? [];
  const labels = useMemo(
    () =>
      counters.map(
        (c) =>
          Object.entries(c.scope)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ') || 'all',
      ),
    [counters],
  );
  const series = useMemo(
    () => [
      { label: 'used', values: counters.map((c) => Number(c.used)) },
      { label: 'held', values: counters.map((c) => Number(c.held)) },
      { label: 'remaining', values: counters.map((c) => Number(c.remaining)) },
    ],
    [counters],
  );
  const history = useGet<{ points: { windowStart: string; scope: Record<string, string>; used: string }[] }>(
    `/v1/budgets/${enc(budget.budgetId)}/history`,
    5000,
  );
  const burn = useMemo(() => {
    const points = history.data?.points ?? [];
    const windows = [...new Set(points.map((p) => p.windowStart))].sort();
    const key = (scope: Record<string, string>) =>
      Object.entries(scope)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || 'all';
    const counters = [...new Set(points.map((p) => key(p.scope)))].sort();
    return {
      labels: windows.map((w) => new Date(w).toLocaleString()),
      series: counters.map((c) => ({
        label: c,
        values: windows.map((w) =>
          points
            .filter((p) => p.windowStart === w && key(p.scope) === c)
            .reduce((a, p) => a + Number(p.used), 0),
        ),
      })),
    };
  }, [history.data]);
  return (
    <section>
      <h2>
        {budget.budgetId} <span className="pill">{budget.kind}</span>{' '}
        <span className="pill">{budget.mode}</span>
      </h2>
      <p>
        {budget.customerId} · {budget.metric} per {budget.period} · limit {budget.limit} · scope{' '}
        {JSON.stringify(budget.scope)}
      </p>
      {counters.length > 0 ? (
        <ChartView kind="bar" stacked labels={labels} series={series} testId={`burn-${budget.budgetId}`} />
      ) : (
        <p>Nothing counted in this period yet.</p>
      )}
      {burn.labels.length > 0 && (
        <>
          <h3>Used per {budget.period}</h3>
          <ChartView
            kind="line"
            labels={burn.labels}
            series={burn.series}
            testId={`history-${budget.budgetId}`}
          />
        </>
      )}
    </section>
  );
}

export function BudgetsPage() {
  const budgets = useGet<{ items: Budget[] }>('/v1/budgets');
  const [id, setId] = useState('');
  const [customerId, setCustomerId] = useState('');
  const [limit, setLimit] = useState('');
  const [period, setPeriod] = useState('month');
  const [scope, setScope] = useState('');
  const add = useAction(budgets.reload);
  return (
    <>
      <section>
        <h2>New budget</h2>
        <form
          aria-label="new budget"
          onSubmit={(e) => {
            e.preventDefault();
            void add.run(() => {
              const parsed = parseScope(scope);
              return api('PUT', `/v1/budgets/${enc(id)}`, { customerId, limit, period, scope: parsed });
            });
          }}
        >
          <TextField label="id" value={id} onChange={setId} required />
          <TextField label="customer" value={customerId} onChange={setCustomerId} required />
          <TextField label="scope (team=t1, agent=*)" value={scope} onChange={setScope} />
          <label>
            period
            <select value={period} onChange={(e) => setPeriod(e.target.value)}>
              {['hour', 'day', 'week', 'month', 'year'].map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          </label>
          <TextField label="limit (credits)" value={limit} onChange={setLimit} required size={8} />
          <button type="submit">Save budget</button>
        </form>
        <ErrorLine error={add.error} />
      </section>
      {budgets.data?.items.map((b) => (
        <BudgetBurn key={b.budgetId} budget={b} />
      ))}
    </>
  );
}

// ---------------------------------------------------------------------------------------------

export function BlocksPage() {
  const blocks = useGet<{ items: Block[] }>('/v1/blocks');
  const [id, setId] = useState('');
  const [scope, setScope] = useState('');
  const [reason, setReason] = useState('');
  const act = useAction(blocks.reload);
  return (
    <section>
      <h2>Kill switch</h2>
      <p>A block denies every matching request, in every gate, within a second.</p>
      <table>
        <tbody>
          {blocks.data?.items.map((b) => (
            <tr key={b.blockId}>
              <td>{b.blockId}</td>
              <td>{JSON.stringify(b.scope)}</td>
              <td>{b.reason}</td>
              <td>
                <button
                  type="button"
                  className="danger"
                  onClick={() => void act.run(() => api('DELETE', `/v1/blocks/${enc(b.blockId)}`))}
                >
                  Lift
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        aria-label="new block"
        onSubmit={(e) => {
          e.preventDefault();
          void act.run(() => {
            const parsed = parseScope(scope);
            return api('PUT', `/v1/blocks/${enc(id)}`, { scope: parsed, ...(reason ? { reason } : {}) });
          });
        }}
      >
        <TextField label="id" value={id} onChange={setId} required />
        <TextField label="scope (customerId=acme, agent=a7)" value={scope} onChange={setScope} required />
        <TextField label="reason" value={reason} onChange={setReason} />
        <button type="submit" className="danger">
          Block
        </button>
      </form>
      <ErrorLine error={act.error} />
    </section>
  );
}

// ---------------------------------------------------------------------------------------------

function UsageChart({ meter }: { meter: Meter }) {
  const [windowSize, setWindowSize] = useState('MINUTE');
  const from = useMemo(() => {
    const span = windowSize === 'MINUTE' ? 3_600_000 : windowSize === 'HOUR' ? 86_400_000 : 30 * 86_400_000;
    return new Date(Math.floor((Date.now() - span) / 60_000) * 60_000).toISOString();
  }, [windowSize]);
  const usage = useGet<{ data: UsageRow[] }>(
    `/v1/meters/${enc(meter.slug)}/query?windowSize=${windowSize}&groupBy=subject&from=${enc(from)}`,
    3000,
  );
  const { labels, series } = useMemo(() => {
    const rows = usage.data?.data ?? [];
    // Every window of the range, empty ones at zero, so the line reads as time.
    const step = windowSize === 'MINUTE' ? 60_000 : windowSize === 'HOUR' ? 3_600_000 : 86_400_000;
    const windows: string[] = [];
    for (let t = Math.floor(Date.parse(from) / step) * step; t <= Date.now(); t += step) {
      windows.push(new Date(t).toISOString());
    }
    const subjects = [...new Set(rows.map((r) => r.subject ?? 'all'))].sort();
    const at = (w: string, s: string) =>
      rows
        .filter((r) => Date.parse(r.windowStart) === Date.parse(w) && (r.subject ?? 'all') === s)
        .reduce((a, r) => a + r.value, 0);
    const label = (w: string) =>
      windowSize === 'DAY'
        ? new Date(w).toLocaleDateString()
        : new Date(w).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return {
      labels: rows.length === 0 ? [] : windows.map(label),
      series: subjects.map((s) => ({ label: s, values: windows.map((w) => at(w, s)) })),
    };
  }, [usage.data, windowSize, from]);
  return (
    <section>
      <h2>
        {meter.slug} <span className="pill">{meter.aggregation}</span>{' '}
        <span className="pill">{meter.eventType}</span>
        <select
          value={windowSize}
          onChange={(e) => setWindowSize(e.target.value)}
          style={{ marginLeft: '1rem' }}
        >
          {['MINUTE', 'HOUR', 'DAY'].map((w) => (
            <option key={w}>{w}</option>
          ))}
        </select>
      </h2>
      {labels.length > 0 ? (
        <ChartView kind="line" labels={labels} series={series} testId={`usage-${meter.slug}`} />
      ) : (
        <p data-testid={`usage-${meter.slug}`} data-total={0}>
          No usage in this range yet.
        </p>
      )}
      <ErrorLine error={usage.error} />
    </section>
  );
}

export function UsagePage() {
  const meters = useGet<{ items: Meter[] }>('/v1/meters');
  const [slug, setSlug] = useState('');
  const [eventType, setEventType] = useState('allot.reservation.settled');
  const [aggregation, setAggregation] = useState('SUM');
  const [valueProperty, setValueProperty] = useState('$.units');
  const add = useAction(meters.reload);
  return (
    <>
      <section>
        <h2>Meters</h2>
        <form
          aria-label="new meter"
          onSubmit={(e) => {
            e.preventDefault();
            void add.run(() =>
              api('PUT', `/v1/meters/${enc(slug)}`, {
                eventType,
                aggregation,
                ...(aggregation === 'COUNT' ? {} : { valueProperty }),
              }),
            );
          }}
        >
          <TextField label="slug" name="meterSlug" value={slug} onChange={setSlug} required />
          <TextField label="event type" value={eventType} onChange={setEventType} size={26} />
          <label>
            aggregation
            <select value={aggregation} onChange={(e) => setAggregation(e.target.value)}>
              {['SUM', 'COUNT', 'UNIQUE_COUNT', 'AVG', 'MIN', 'MAX', 'LATEST'].map((a) => (
                <option key={a}>{a}</option>
              ))}
            </select>
          </label>
          <TextField label="value" value={valueProperty} onChange={setValueProperty} />
          <button type="submit">Save meter</button>
        </form>
        <ErrorLine error={add.error} />
      </section>
      {meters.data?.items.map((m) => (
        <UsageChart key={m.slug} meter={m} />
      ))}
    </>
  );
}

// ---------------------------------------------------------------------------------------------

export function TenantsPage() {
  const tenants = useGet<{ items: Tenant[] }>('/v1/tenants', 5000);
  return (
    <section>
      <h2>Tenants</h2>
      {tenants.error ? (
        <p>{tenants.error}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>tenant</th>
              <th>name</th>
              <th>connection</th>
              <th>applied configuration version</th>
              <th>last seen</th>
            </tr>
          </thead>
          <tbody>
            {tenants.data?.items.map((t) => (
              <tr key={t.id}>
                <td>{t.id}</td>
                <td>{t.name}</td>
                <td>
                  <span className={`pill ${t.connected ? 'ok' : 'off'}`}>
                    {t.connected ? 'connected' : 'offline'}
                  </span>
                </td>
                <td>{t.appliedVersion}</td>
                <td>{t.lastSeen ? when(t.lastSeen) : 'never'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
