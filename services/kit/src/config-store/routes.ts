/**
 * The routes of one kind of configuration document: PUT (create or replace), GET, DELETE and a
 * list, over the configuration store. A write returns once this process's replica has it, so
 * a decision right after a PUT already sees the change; other processes get it pushed.
 */
import { z } from 'zod';
import type { AllotApp } from '../app.ts';
import { actorOf, type Scope, tenantOf } from '../auth.ts';
import { AppError } from '../errors.ts';
import type { ConfigReplica } from './replica.ts';
import type { ConfigDocument, ConfigStore } from './store.ts';

export interface DocumentRoutesOptions<Params extends Record<string, string>, Body extends z.ZodObject> {
  store: ConfigStore;
  replica: ConfigReplica;
  kind: string;
  /** OpenAPI tag and the noun in summaries ("feature", "budget"). */
  tag: string;
  noun: string;
  /** The document's path with its parameters, e.g. `/v1/features/:key`. */
  path: string;
  /** The path's parameters; the answer shows them beside the body. */
  params: z.ZodObject & z.ZodType<Params>;
  /** The document id from the path (`acme/t1` for entity t1 of customer acme)... */
  docId(params: Params): string;
  /** ...and back. */
  paramsOf(docId: string): Params;
  body: Body;
  /** Checks that need the rest of the configuration; a message is answered 422. */
  check?(tenant: string, params: Params, body: z.output<Body>): Promise<string | null> | string | null;
  /** Deleting is allowed (default true). */
  deletable?: boolean;
  /** A list route, `GET <listPath>`, and which documents it shows: ids starting with the prefix. */
  list?: { path: string; params?: z.ZodObject; prefix?(params: Record<string, string>): string };
  readScope?: Scope;
}

const meta = {
  version: z.number().int().describe('the configuration version that last changed it'),
  updatedAt: z.string(),
};

export function documentRoutes<Params extends Record<string, string>, Body extends z.ZodObject>(
  app: AllotApp,
  options: DocumentRoutesOptions<Params, Body>,
): void {
  const { store, replica, kind } = options;
  const view = options.body.extend({ ...options.params.shape, ...meta });
  const show = (params: Params, doc: ConfigDocument) => ({
    ...(doc.body as object),
    ...params,
    version: doc.version,
    updatedAt: doc.updatedAt.toISOString(),
  });

  app.put(
    options.path,
    {
      schema: {
        tags: [options.tag],
        summary: `Create or replace a ${options.noun}`,
        params: options.params,
        body: options.body,
        response: { 200: view },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const params = request.params as Params;
      const body = request.body as z.output<Body>;
      const problem = await options.check?.(tenant, params, body);
      if (problem) throw new AppError('unprocessable', problem);
      const { document } = await store.put(tenant, kind, options.docId(params), body, actorOf(request));
      await replica.waitFor(tenant, document.version);
      return show(params, document);
    },
  );

  app.get(
    options.path,
    {
      config: { auth: options.readScope ?? 'read' },
      schema: {
        tags: [options.tag],
        summary: `Get a ${options.noun}`,
        params: options.params,
        response: { 200: view },
      },
    },
    async (request) => {
      const params = request.params as Params;
      const doc = await store.get(tenantOf(request), kind, options.docId(params));
      if (!doc) throw new AppError('not_found', `${options.noun} ${options.docId(params)} not found`);
      return show(params, doc);
    },
  );

  if (options.deletable !== false) {
    app.delete(
      options.path,
      {
        schema: {
          tags: [options.tag],
          summary: `Delete a ${options.noun}`,
          params: options.params,
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        const params = request.params as Params;
        const deleted = await store.delete(tenant, kind, options.docId(params), actorOf(request));
        if (!deleted) throw new AppError('not_found', `${options.noun} ${options.docId(params)} not found`);
        await replica.waitFor(tenant, (await store.versions()).get(tenant) ?? 0);
        return reply.code(204).send(null);
      },
    );
  }

  if (options.list) {
    const list = options.list;
    app.get(
      list.path,
      {
        config: { auth: options.readScope ?? 'read' },
        schema: {
          tags: [options.tag],
          summary: `List ${options.noun}s`,
          ...(list.params ? { params: list.params } : {}),
          response: { 200: z.object({ items: z.array(view) }) },
        },
      },
      async (request) => {
        const listParams = (request.params ?? {}) as Record<string, string>;
        const prefix = list.prefix?.(listParams) ?? '';
        const docs = await store.list(tenantOf(request), kind, prefix);
        return { items: docs.map((doc) => show(options.paramsOf(doc.id), doc)) };
      },
    );
  }
}
