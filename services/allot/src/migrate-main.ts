/**
 * `DATABASE_URL=... allot migrate [data-plane|control-plane]`: applies every migration of the
 * plane and exits (0 when done, 1 with one line otherwise). The images run it as their
 * `migrate.mjs` (a Helm hook job); the plane comes from the argument, else ALLOT_PLANE.
 */
import { loadConfig, redactUrl, runMain, urlVariable } from '@allot/kit';
import { openSqlStore } from '@allot/kit/sql';
import { z } from 'zod';
import { migratePlane, planes } from './migrations.ts';

const migrateEnv = z.object({
  DATABASE_URL: urlVariable(['postgres:', 'postgresql:'], 'PostgreSQL'),
  ALLOT_PLANE: z.enum(planes).default('data-plane'),
});

runMain('migrate', async () => {
  const env = loadConfig(migrateEnv);
  const given = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
  const plane = given === undefined ? env.ALLOT_PLANE : z.enum(planes).parse(given);
  const sql = await openSqlStore({ url: env.DATABASE_URL, max: 1 });
  try {
    const applied = await migratePlane(sql, plane);
    process.stdout.write(
      `${JSON.stringify({ msg: 'migrated', plane, database: redactUrl(env.DATABASE_URL), applied })}\n`,
    );
  } finally {
    await sql.close();
  }
});
