export { BUDGET_ALERT, BudgetAlerts, type BudgetAlertsOptions } from './alerts.ts';
export { type GovernancePluginOptions, governancePlugin } from './app.ts';
export * from './domain/limits.ts';
export * from './domain/periods.ts';
export * from './domain/records.ts';
export * from './domain/scope.ts';
export { entityTreeOf, governanceConfigRoutes } from './routes/config.ts';
export { governanceRecordApplier } from './store/applier.ts';
export { governanceLua } from './store/hot-lua.ts';
export {
  type DecisionKeyOf,
  GovernanceHotState,
  type GovernanceHotStateOptions,
  governanceKeys,
} from './store/hot-state.ts';
export {
  applyRecords,
  type GovernanceSnapshot,
  governanceMigrations,
  governanceSnapshot,
  migrateGovernance,
} from './store/ledger.ts';
export { budgetCounters, type CounterStatus, decisionPage, findDecision } from './store/queries.ts';
