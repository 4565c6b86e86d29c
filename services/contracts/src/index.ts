export * from './common.ts';
export * as config from './config.ts';
export * as credits from './credits.ts';
export * as decisions from './decisions.ts';
