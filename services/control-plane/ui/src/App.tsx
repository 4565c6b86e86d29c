import { useEffect, useState } from 'react';
import { apiKey, setApiKey } from './api.ts';
import {
  BlocksPage,
  BudgetsPage,
  CatalogPage,
  CustomerPage,
  CustomersPage,
  TenantsPage,
  UsagePage,
} from './pages.tsx';

const PAGES = [
  ['customers', 'Customers'],
  ['catalog', 'Catalog'],
  ['budgets', 'Budgets'],
  ['blocks', 'Kill switch'],
  ['usage', 'Meters & usage'],
  ['tenants', 'Tenants'],
] as const;

function useHash(): string {
  const [hash, setHash] = useState(() => location.hash.slice(1) || 'customers');
  useEffect(() => {
    const on = () => setHash(location.hash.slice(1) || 'customers');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function Login({ onKey }: { onKey: (key: string) => void }) {
  const [key, setKey] = useState('');
  return (
    <main>
      <section>
        <h2>Sign in</h2>
        <p>Paste the API key `npm start` printed (or your ALLOT_API_KEY).</p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            onKey(key.trim());
          }}
        >
          <label>
            API key
            <input name="apiKey" value={key} onChange={(e) => setKey(e.target.value)} size={48} />
          </label>
          <button type="submit">Sign in</button>
        </form>
      </section>
    </main>
  );
}

export function App() {
  const [key, setKey] = useState(apiKey());
  const hash = useHash();
  if (!key)
    return (
      <Login
        onKey={(k) => {
          setApiKey(k);
          setKey(k);
        }}
      />
    );
  const [page, arg] = hash.split('/');
  return (
    <>
      <header>
        <strong>Allot</strong>
        <nav>
          {PAGES.map(([id, label]) => (
            <a key={id} href={`#${id}`} className={page === id ? 'active' : ''}>
              {label}
            </a>
          ))}
        </nav>
        <span style={{ flex: 1 }} />
        <button
          type="button"
          onClick={() => {
            setApiKey(null);
            setKey(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        {page === 'customers' && !arg && <CustomersPage />}
        {page === 'customers' && arg && <CustomerPage id={decodeURIComponent(arg)} />}
        {page === 'catalog' && <CatalogPage />}
        {page === 'budgets' && <BudgetsPage />}
        {page === 'blocks' && <BlocksPage />}
        {page === 'usage' && <UsagePage />}
        {page === 'tenants' && <TenantsPage />}
      </main>
    </>
  );
}
