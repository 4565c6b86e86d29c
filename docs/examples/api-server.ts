/**
 * Quickstart for an API server: ask Allot before calling a model, settle what it used.
 * Run against `npm start`:  ALLOT_API_KEY=<key> npx tsx docs/examples/api-server.ts
 */
import { Allot, DeniedError } from '@allot/sdk';

const allot = new Allot({
  baseUrl: process.env.ALLOT_URL ?? 'http://localhost:8080',
  apiKey: process.env.ALLOT_API_KEY ?? '',
});

// Once: what you sell (on npm start the demo already has most of this).
await allot.creditTypes.put('credits', { name: 'Credits' });
await allot.features.put('llm-tokens', { name: 'LLM tokens', type: 'metered', unit: 'token' });
await allot.plans.put('starter', {
  name: 'Starter',
  entitlements: [{ feature: 'llm-tokens' }],
  creditRates: [{ feature: 'llm-tokens', creditType: 'credits', rate: '0.001' }],
});
await allot.customers.put('quickstart-co', { name: 'Quickstart Co' });
await allot.customers.subscribe('quickstart-co', { plan: 'starter' });
await allot.customers.grant('quickstart-co', {
  creditType: 'credits',
  amount: '10',
  category: 'promotional',
  idempotencyKey: 'quickstart-welcome-grant',
});

// A stand-in for your model provider: reports the tokens it used, like real APIs do.
async function callModel(prompt: string, maxTokens: number) {
  const output = `echo: ${prompt}`;
  return {
    text: output,
    usage: { input_tokens: prompt.length, output_tokens: Math.min(maxTokens, output.length) },
  };
}

// Every request: reserve the most it may cost, call the model, settle what it really used.
// If the model call throws, the reservation is released; a deny never reaches the model.
async function handleChat(customerId: string, prompt: string) {
  try {
    const { response, settlement } = await allot.llm(
      {
        customerId,
        feature: 'llm-tokens',
        maxTokens: 500,
        promptTokens: prompt.length,
        dimensions: { model: 'demo' },
      },
      () => callModel(prompt, 500),
    );
    return { text: response.text, charged: settlement?.settled, balance: settlement?.balance?.available };
  } catch (error) {
    if (error instanceof DeniedError) return { denied: error.decision.reason };
    throw error;
  }
}

const answer = await handleChat('quickstart-co', 'hello Allot');
console.log(JSON.stringify(answer));
const denied = await handleChat('no-such-customer', 'hello');
console.log(JSON.stringify(denied));
