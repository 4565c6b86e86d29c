import { baseEnv, envBoolean, urlListVariable } from '@allot/kit';
import { z } from 'zod';

export const idPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** The all-in-one process: every variable is optional; each store that is set switches to the real server. */
export const allotEnv = baseEnv
  .extend({
    ALLOT_DATA_DIR: z.string().default('.allot/data'),
    ALLOT_TENANT: z.string().regex(idPattern, 'expected 1-128 of [A-Za-z0-9._:-]').default('default'),
    /** When the hot state is unreachable: allow without reserving (true) or answer 503 (false, default). */
    ALLOT_FAIL_OPEN: envBoolean.default(false),
    /** Load the demo (a plan, two customers, a team budget) on an empty embedded store. */
    ALLOT_DEMO: envBoolean.default(true),
    /** A remote control plane's hub (NATS): this process is then a data plane of tenant ALLOT_TENANT. */
    ALLOT_UPLINK_URL: urlListVariable(['nats:', 'tls:'], 'NATS').optional(),
    ALLOT_UPLINK_USER: z.string().optional(),
    ALLOT_UPLINK_PASSWORD: z.string().optional(),
    /** The control plane's own password on its hub (for the generated nats-server configuration). */
    ALLOT_HUB_PASSWORD: z.string().min(16).optional(),
  })
  .superRefine((env, ctx) => {
    // Production never runs on embedded stores or on a key printed to a terminal.
    if (env.NODE_ENV !== 'production') return;
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'NATS_URL', 'ALLOT_API_KEY'] as const) {
      if (env[name] === undefined)
        ctx.addIssue({ code: 'custom', path: [name], message: 'is required when NODE_ENV=production' });
    }
  });

export type AllotEnv = z.output<typeof allotEnv>;
