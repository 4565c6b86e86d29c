/** The database the services use and the user they connect as, on every cloud. */
export const DATABASE_NAME = 'allot';
export const DATABASE_USER = 'allot';

/**
 * `DATABASE_URL` for the services. node-postgres verifies certificates against Node's CAs, which
 * include neither the RDS CA nor Cloud SQL's per-instance CAs: the connection is encrypted (the
 * server accepts TLS only) without verifying the server's certificate.
 */
export function databaseUrl(password: string, host: string, port: number): string {
  return `postgres://${DATABASE_USER}:${password}@${host}:${port}/${DATABASE_NAME}?sslmode=no-verify`;
}
