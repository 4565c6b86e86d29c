/** Test fixtures: a fresh database, Redis key prefix or NATS namespace per test, removed at the end. */
export * from './bus.ts';
export * from './hot.ts';
export * from './sql.ts';
export * from './wait.ts';
