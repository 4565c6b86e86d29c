export { type GatePluginOptions, gatePlugin } from './app.ts';
export { Catalog, type CustomerView, type PricedRate, TenantCatalog } from './catalog.ts';
export * from './domain/entitlements.ts';
export * from './domain/formula.ts';
export * from './domain/ids.ts';
export { GateEngine, type GateEngineOptions, type Settlement } from './engine.ts';
export { catalogRoutes } from './routes/catalog.ts';
export { type GateService, type GateServiceOptions, startGate } from './service.ts';
export { buildGateApp, type GateEnv, gateEnv } from './standalone.ts';
