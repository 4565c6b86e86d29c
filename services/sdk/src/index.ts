export { Allot, type ClientOptions, DeniedError, ROUTES, type Usage } from './client.ts';
export { AllotError, type AllotOptions } from './http.ts';
export type * from './types.ts';
