/**
 * The web UI in a real browser (playwright-core driving Debian's chromium, headless) against
 * the all-in-one app: a plan, a customer and a grant made through the UI; decisions made
 * through the API; the balance and the usage chart change on screen. Screenshots of the main
 * pages go to docs/screenshots/.
 */
import { fileURLToPath } from 'node:url';
import { until } from '@allot/kit/testing';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AllotRig, KEYS, openAllot } from './support/allot-app.ts';

const SHOTS = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));

describe('the web UI in chromium', () => {
  let rig: AllotRig;
  let browser: Browser;
  let page: Page;
  let origin: string;

  beforeAll(async () => {
    rig = await openAllot('embedded', { ALLOT_TENANT: 'demo' });
    origin = await rig.app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await rig?.close();
  });

  const shot = (name: string) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });

  it('creates a plan, a customer and a grant, then shows the balance and usage change as decisions settle', async () => {
    await rig.ok('PUT', '/v1/credit-types/credits', { name: 'Credits' });
    await page.goto(origin);
    await page.getByLabel('API key').fill(KEYS.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();

    await page.getByRole('link', { name: 'Catalog' }).click();
    const feature = page.getByRole('form', { name: 'new feature' });
    await feature.getByLabel('key').fill('llm-tokens');
    await feature.getByRole('button', { name: 'Add feature' }).click();
    await page.getByRole('cell', { name: 'llm-tokens', exact: true }).first().waitFor();
    const plan = page.getByRole('form', { name: 'new plan' });
    await plan.getByLabel('key').fill('pro');
    await plan.getByLabel('name').fill('Pro');
    await plan.getByLabel('feature').selectOption('llm-tokens');
    await plan.getByLabel('credits per unit').fill('0.002');
    await plan.getByRole('button', { name: 'Save plan' }).click();
    await page.getByRole('cell', { name: 'Pro', exact: true }).waitFor();
    await shot('catalog');

    await page.getByRole('link', { name: 'Meters & usage' }).click();
    const meter = page.getByRole('form', { name: 'new meter' });
    await meter.getByLabel('slug').fill('settled-tokens');
    await meter.getByRole('button', { name: 'Save meter' }).click();
    await page.getByTestId('usage-settled-tokens').waitFor();

    await page.getByRole('link', { name: 'Customers' }).click();
    const customer = page.getByRole('form', { name: 'new customer' });
    await customer.getByLabel('id', { exact: true }).fill('acme');
    await customer.getByLabel('name').fill('Acme Inc');
    await customer.getByLabel('plan').selectOption('pro');
    await customer.getByRole('button', { name: 'Add customer' }).click();
    await page.getByRole('link', { name: 'acme' }).click();
    const grant = page.getByRole('form', { name: 'grant credits' });
    await grant.getByLabel('amount').fill('100');
    await grant.getByRole('button', { name: 'Grant' }).click();
    const available = page.getByTestId('balance-credits').locator('[data-available]');
    await until(
      'the granted balance on screen',
      async () => (await available.getAttribute('data-available')) === '100',
    );

    // Decisions through the API: each reserves 1000 tokens (2 credits) and settles 1000.
    await rig.ok('PUT', '/v1/customers/acme/entities/t1', { type: 'team' });
    await rig.ok('PUT', '/v1/customers/acme/entities/a7', { type: 'agent', parentId: 't1' });
    await rig.ok('PUT', '/v1/budgets/acme-team', {
      customerId: 'acme',
      scope: { team: 't1' },
      period: 'month',
      limit: '50',
    });
    for (let i = 0; i < 5; i++) {
      const d = await rig.ok<{ reservationId: string }>('POST', '/v1/decisions', {
        customerId: 'acme',
        feature: 'llm-tokens',
        units: 1000,
        dimensions: { agent: 'a7' },
      });
      await rig.ok('POST', `/v1/reservations/${d.reservationId}/settle`, { units: 1000 });
    }
    await until(
      'the balance on screen after the settles',
      async () => (await available.getAttribute('data-available')) === '90',
      15_000,
    );
    await page.reload();
    await page.getByRole('cell', { name: 'debit', exact: true }).first().waitFor();
    await shot('customer');

    await page.getByRole('link', { name: 'Meters & usage' }).click();
    const chart = page.getByTestId('usage-settled-tokens');
    await until(
      'the usage chart shows the settled tokens',
      async () => (await chart.getAttribute('data-total')) === '5000',
      20_000,
    );
    await shot('usage');

    await page.getByRole('link', { name: 'Budgets' }).click();
    const burn = page.getByTestId('burn-acme-team');
    await until('the budget burn', async () => Number(await burn.getAttribute('data-total')) > 0, 15_000);
    const history = page.getByTestId('history-acme-team');
    await until(
      'the burn over time',
      async () => (await history.getAttribute('data-total')) === '10',
      15_000,
    );
    await shot('budgets');

    await page.getByRole('link', { name: 'Kill switch' }).click();
    const block = page.getByRole('form', { name: 'new block' });
    await block.getByLabel('id', { exact: true }).fill('stop-a7');
    await block.getByLabel(/scope/).fill('agent=a7');
    await block.getByLabel('reason').fill('runaway agent');
    await block.getByRole('button', { name: 'Block' }).click();
    await page.getByRole('cell', { name: 'runaway agent', exact: true }).waitFor();
    await shot('kill-switch');
    const denied = await rig.ok<{ reason: string }>('POST', '/v1/decisions', {
      customerId: 'acme',
      feature: 'llm-tokens',
      units: 1,
      dimensions: { agent: 'a7' },
    });
    expect(denied.reason).toBe('blocked');

    await page.getByRole('link', { name: 'Tenants' }).click();
    await page.getByRole('cell', { name: 'demo', exact: true }).first().waitFor();
    await shot('tenants');
    await page.getByRole('link', { name: 'Customers' }).click();
    await shot('customers');
  });
});
