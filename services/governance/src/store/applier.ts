import type { SqlExecutor } from '@allot/kit/sql';
import { type GovernanceRecord, governanceRecord } from '../domain/records.ts';
import { applyRecords } from './ledger.ts';

/**
 * The governance part of the hot-path stream (the `decisions` beside the credit events), as
 * the stream worker applies it: in the same transaction as the credit events of the same
 * messages. A record that does not parse is logged and left out; the rest of its message
 * still applies.
 */
export function governanceRecordApplier(
  options: { log?: { error(obj: object, msg: string): void }; onAlerts?: () => void } = {},
) {
  const { log } = options;
  let raised = false;
  return {
    parse(raw: unknown, message: { seq: number; subject: string }): GovernanceRecord[] {
      if (!Array.isArray(raw)) {
        log?.error({ seq: message.seq, subject: message.subject }, 'governance: decisions is not a list');
        return [];
      }
      const out: GovernanceRecord[] = [];
      for (const item of raw) {
        const parsed = governanceRecord.safeParse(item);
        if (parsed.success) out.push(parsed.data);
        else log?.error({ seq: message.seq, problem: parsed.error.message }, 'governance: record rejected');
      }
      return out;
    },
    async apply(tx: SqlExecutor, records: readonly unknown[]): Promise<void> {
      const { alerts } = await applyRecords(tx, records as GovernanceRecord[]);
      if (alerts > 0) raised = true;
    },
    afterCommit(): void {
      // Alerts are in the outbox with the commit; the publisher takes them from there.
      if (raised) {
        raised = false;
        options.onAlerts?.();
      }
    },
  };
}
