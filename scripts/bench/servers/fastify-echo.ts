/** The HTTP baseline: bare fastify, no logger, no plugins; `POST /echo` returns the body. */
import Fastify from 'fastify';
import { announceListening } from '../lib/server.ts';

const app = Fastify({ logger: false });
app.post('/echo', async (request) => request.body);
await app.listen({ host: '127.0.0.1', port: 0 });
announceListening(app.server, () => app.close());
