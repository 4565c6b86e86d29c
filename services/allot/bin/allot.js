#!/usr/bin/env node
// The `allot` CLI. Allot's packages ship TypeScript source; tsx runs it without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
