export { CreditAlerts } from './alerts.ts';
export { creditsPlugin } from './app.ts';
export * from './domain/alerts.ts';
export * from './domain/amount.ts';
export * from './domain/burn-order.ts';
export * from './domain/events.ts';
export * from './engine.ts';
export {
  type CreditsService,
  type CreditsServiceOptions,
  creditsMigrations,
  startCredits,
} from './service.ts';
export type { PoolRef } from './store/keys.ts';
export { CreditsSweeper } from './sweeper.ts';
export { CreditsWorker } from './worker/worker.ts';
