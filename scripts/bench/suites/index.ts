/** The suites `npm run bench -- <name>` knows: one line each, loaded only when used. */
import type { Suite } from '../lib/suite.ts';

export const suites: Record<string, () => Promise<Suite>> = {
  baseline: () => import('./baseline.ts'),
  'credits-ledger': () => import('./credits-ledger.ts'),
  kit: () => import('./kit.ts'),
  credits: () => import('./credits.ts'),
  gate: () => import('./gate.ts'),
  metering: () => import('./metering.ts'),
  scale: () => import('./scale.ts'),
};
