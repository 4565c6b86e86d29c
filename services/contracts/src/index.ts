export * from './common.ts';
export * as credits from './credits.ts';
