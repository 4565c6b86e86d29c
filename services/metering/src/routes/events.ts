/**
 * `POST /api/v1/events` (OpenMeter's route) and `POST /v1/events`: CloudEvents, one
 * (`application/cloudevents+json`), a batch (`application/cloudevents-batch+json`), either
 * (`application/json`), or one per line (`application/x-ndjson`). 204 once every event is
 * stored in JetStream; 400 naming the event and field of each problem, and then nothing of the
 * request is stored.
 */
import { type AllotApp, AppError, tenantOf } from '@allot/kit';
import {
  describeProblem,
  type EventProblem,
  isProblem,
  readEvent,
  type UsageEvent,
} from '../domain/events.ts';
import { readMeter } from '../domain/meters.ts';
import type { EventIngest } from '../ingest.ts';
import type { MeterCatalog } from '../meters.ts';

export interface EventRoutesOptions {
  ingest: EventIngest;
  meters: MeterCatalog;
  /** Oldest event time accepted, relative to now. */
  latenessMs: number;
  /** How far in the future an event may be (clock skew). */
  futureMs: number;
  maxEvents: number;
  bodyLimit: number;
}

const SHOWN_PROBLEMS = 10;

export function eventRoutes(app: AllotApp, options: EventRoutesOptions): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser(
    ['application/cloudevents+json', 'application/cloudevents-batch+json'],
    { parseAs: 'string', bodyLimit: options.bodyLimit },
    json,
  );
  app.addContentTypeParser(
    'application/x-ndjson',
    { parseAs: 'string', bodyLimit: options.bodyLimit },
    (_request, body, done) => {
      const events: unknown[] = [];
      const lines = (body as string).split('\n');
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!.trim();
        if (line === '') continue;
        try {
          events.push(JSON.parse(line));
        } catch {
          done(new AppError('invalid_request', `body: line ${i + 1} is not valid JSON`), undefined);
          return;
        }
      }
      done(null, events);
    },
  );

  for (const url of ['/api/v1/events', '/v1/events']) {
    app.post(
      url,
      {
        bodyLimit: options.bodyLimit,
        config: { auth: 'ingest' },
        schema: {
          tags: ['metering'],
          summary: 'Ingest usage events (CloudEvents; OpenMeter-compatible)',
          description:
            'One CloudEvent, an array of them, or NDJSON. `subject` is the customer. 204 once durable; 400 names each bad event and field, and nothing of the request is stored.',
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        const body = request.body;
        const items = Array.isArray(body) ? body : [body];
        if (items.length === 0) throw new AppError('invalid_request', 'body: no events');
        if (items.length > options.maxEvents) {
          throw new AppError('payload_too_large', `body: at most ${options.maxEvents} events per request`);
        }
        const now = Date.now();
        const window = { now, oldest: now - options.latenessMs, newest: now + options.futureMs };
        const events: UsageEvent[] = [];
        const problems: EventProblem[] = [];
        for (let i = 0; i < items.length; i++) {
          const read = readEvent(items[i], i, window);
          if (isProblem(read)) {
            problems.push(read);
            continue;
          }
          for (const meter of options.meters.forType(tenant, read.type)) {
            const reading = readMeter(meter, read.data);
            if (typeof reading === 'string') {
              const colon = reading.indexOf(': ');
              problems.push({
                index: i,
                id: read.id,
                field: reading.slice(0, colon),
                message: reading.slice(colon + 2),
              });
              break;
            }
          }
          events.push(read);
        }
        if (problems.length > 0) {
          const shown = problems.slice(0, SHOWN_PROBLEMS).map(describeProblem).join('; ');
          const more =
            problems.length > SHOWN_PROBLEMS ? ` (and ${problems.length - SHOWN_PROBLEMS} more)` : '';
          throw new AppError(
            'invalid_request',
            `${problems.length} of ${items.length} events rejected, none stored: ${shown}${more}`,
          );
        }
        await options.ingest.ingest(tenant, events);
        return reply.code(204).send();
      },
    );
  }
}
