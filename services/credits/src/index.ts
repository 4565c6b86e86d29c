export { CreditAlerts } from './alerts.ts';
export { creditsPlugin } from './app.ts';
export * from './domain/alerts.ts';
export * from './domain/amount.ts';
export * from './domain/burn-order.ts';
export * from './domain/events.ts';
export * from './domain/hold-replies.ts';
export * from './engine.ts';
export { addGrant, grantView } from './routes/grants.ts';
export {
  type CreditsService,
  type CreditsServiceOptions,
  creditsMigrations,
  startCredits,
} from './service.ts';
export { creditsLua } from './store/hot-scripts.ts';
export { customerKeys, type PoolRef, poolKeys, poolName, poolScriptKeys } from './store/keys.ts';
export { upsertCreditType } from './store/ledger.ts';
export { StreamLedgerView } from './store/ledger-view.ts';
export { CreditEventPublisher, type HotPathRecord, type PublisherOptions } from './store/publisher.ts';
export { CreditsSweeper } from './sweeper.ts';
export { CreditsWorker, creditsStreamConfig, ledgerCaughtUp, type RecordApplier } from './worker/worker.ts';
