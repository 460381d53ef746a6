// The openai npm SDK and ollama-js against a running `tandem serve` (run_clients.sh starts it):
// streaming and not, several requests at once, errors as the clients surface them.
// Usage: node clients.mjs http://127.0.0.1:PORT MODEL_NAME
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ollama } from 'ollama';

const [base, model] = process.argv.slice(2);
assert.ok(base && model, 'usage: node clients.mjs BASE_URL MODEL_NAME');

// Every wait is bounded: a hang is a failure, not a stuck CI job.
const watchdog = setTimeout(() => {
  console.error('clients.mjs: timed out after 240 s');
  process.exit(1);
}, 240000);

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', timeout: 120000, maxRetries: 0 });
const ollama = new Ollama({ host: base });
const say = (what) => console.log(`ok - ${what}`);

// The same greedy chat through both clients: the reasoning (the R1 format opens <think>) comes
// apart from the content in each, and agrees with the raw text of reasoning_format "none".
async function reasoningChecks() {
  const messages = [{ role: 'user', content: 'Think it over' }];
  const raw = await openai.chat.completions.create({
    model, messages, max_tokens: 8, temperature: 0, reasoning_format: 'none',
  });
  const rawText = raw.choices[0].message.content;
  assert.ok(!rawText.includes('</think>'), 'a random model should not close <think>');
  const split = await openai.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0 });
  assert.equal(split.choices[0].message.reasoning_content ?? '', rawText.replace(/^[ \t\r\n]+/, ''));
  assert.equal(split.choices[0].message.content, '');
  const viaOllama = await ollama.chat({ model, messages, options: { temperature: 0, num_predict: 8 }, stream: false });
  assert.equal(viaOllama.message.thinking ?? '', rawText.replace(/^[ \t\r\n]+/, ''));
  assert.equal(viaOllama.message.content, '');
  say('reasoning: openai reasoning_content and ollama message.thinking agree with the raw reply');
}

async function openaiChecks() {
  const models = await openai.models.list();
  assert.equal(models.data[0].id, model);
  assert.equal((await openai.models.retrieve(model)).id, model);
  say('openai: models.list, models.retrieve');

  const messages = [{ role: 'user', content: 'Hello from the openai SDK' }];
  const whole = await openai.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0 });
  assert.equal(whole.object, 'chat.completion');
  assert.equal(whole.choices[0].message.role, 'assistant');
  assert.equal(typeof whole.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(whole.choices[0].finish_reason));
  assert.ok(whole.usage.completion_tokens >= 1);
  say('openai: chat.completions.create');

  const stream = await openai.chat.completions.create({
    model, messages, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let finish = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    text += c.delta.content ?? '';
    text += c.delta.reasoning_content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  const wholeText = (whole.choices[0].message.reasoning_content ?? '') + whole.choices[0].message.content;
  assert.equal(text.length > 0, wholeText.length > 0);
  assert.ok(finish);
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
  say('openai: chat stream with include_usage');

  const completion = await openai.completions.create({ model, prompt: 'Once upon a time', max_tokens: 6, temperature: 0 });
  assert.equal(completion.object, 'text_completion');
  say('openai: completions.create');

  // Four streams at once (the server runs --parallel 4: one batch): each must end with a finish
  // reason, and, greedy, carry the text the same request gives alone.
  const streamText = async (i) => {
    const s = await openai.chat.completions.create({
      model, messages: [{ role: 'user', content: `Stream number ${i}` }], max_tokens: 12, temperature: 0, stream: true,
    });
    let done = false;
    let text = '';
    for await (const chunk of s) {
      if (chunk.choices[0]?.finish_reason) done = true;
      text += (chunk.choices[0]?.delta?.reasoning_content ?? '') + (chunk.choices[0]?.delta?.content ?? '');
    }
    return { done, text };
  };
  const alone = [];
  for (const i of [1, 2, 3, 4]) alone.push(await streamText(i));
  const many = await Promise.all([1, 2, 3, 4].map(streamText));
  assert.deepEqual(many.map((m) => m.done), [true, true, true, true]);
  assert.deepEqual(many.map((m) => m.text), alone.map((m) => m.text));
  say('openai: 4 concurrent streams');

  await assert.rejects(
    openai.chat.completions.create({ model, messages: [], max_tokens: 4 }),
    (e) => e instanceof OpenAI.APIError && e.status === 400,
  );
  say('openai: a 400 surfaces as APIError');
}

async function ollamaChecks() {
  const tags = await ollama.list();
  const name = tags.models[0].name;
  assert.equal(name, model.includes(':') ? model : `${model}:latest`);
  assert.equal(tags.models[0].details.format, 'gguf');
  const show = await ollama.show({ model: name });
  assert.ok(show.model_info['general.architecture']);
  assert.equal(typeof show.template, 'string');
  const ps = await ollama.ps();
  assert.equal(ps.models[0].name, name);
  say('ollama: list, show, ps');

  const messages = [{ role: 'user', content: 'Hello from ollama-js' }];
  const options = { temperature: 0, num_predict: 8, num_ctx: 2048, unknown_option: 1 };
  const whole = await ollama.chat({ model: name, messages, options, stream: false, keep_alive: '5m' });
  assert.equal(whole.done, true);
  assert.equal(whole.message.role, 'assistant');
  assert.ok(whole.eval_count >= 1 && whole.eval_duration > 0 && whole.total_duration > 0);
  say('ollama: chat');

  const parts = await ollama.chat({ model, messages, options, stream: true });
  let text = '';
  let last = null;
  for await (const part of parts) {
    text += part.message.content + (part.message.thinking ?? '');
    last = part;
  }
  assert.equal(last.done, true);
  assert.equal(last.eval_count, whole.eval_count);
  assert.equal(text, whole.message.content + (whole.message.thinking ?? ''));
  say('ollama: chat stream');

  const gen = await ollama.generate({ model: name, prompt: 'Why is the sky blue?', options, stream: false });
  assert.equal(gen.done, true);
  assert.equal(typeof gen.response, 'string');
  const genStream = await ollama.generate({ model: name, prompt: 'Why is the sky blue?', options, stream: true });
  let genText = '';
  for await (const part of genStream) genText += part.response + (part.thinking ?? '');
  assert.equal(genText, gen.response + (gen.thinking ?? ''));
  say('ollama: generate, streamed and not');

  const many = await Promise.all([1, 2, 3].map(async (i) => {
    const s = await ollama.chat({ model: name, messages: [{ role: 'user', content: `Hi ${i}` }], options, stream: true });
    let done = false;
    for await (const part of s) done = part.done;
    return done;
  }));
  assert.deepEqual(many, [true, true, true]);
  say('ollama: 3 concurrent streams');

  await assert.rejects(ollama.chat({ model: 'no-such-model', messages, stream: false }), (e) => {
    assert.match(String(e.message), /not found/);
    return true;
  });
  say('ollama: an unknown model is an error with a message');
}

// Tools and structured output: random weights write garbage, so only the constraint makes these
// replies well-formed; the SDKs must read them as the real APIs' replies.
const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  },
};
const personSchema = {
  type: 'object',
  properties: { name: { type: 'string' }, age: { type: 'integer' } },
  required: ['name', 'age'], additionalProperties: false,
};
function checkPerson(text) {
  const p = JSON.parse(text);
  assert.equal(typeof p.name, 'string');
  assert.ok(Number.isInteger(p.age));
  assert.deepEqual(Object.keys(p).sort(), ['age', 'name']);
}

async function toolAndFormatChecks() {
  const messages = [{ role: 'user', content: 'Weather in Oslo?' }];
  const sampling = { temperature: 1, seed: 3, max_tokens: 320 };
  const forced = await openai.chat.completions.create({
    model, messages, tools: [weatherTool], tool_choice: 'required', ...sampling,
  });
  const call = forced.choices[0].message.tool_calls?.[0];
  assert.equal(forced.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.equal(typeof JSON.parse(call.function.arguments).city, 'string');
  say('openai: tools with tool_choice required');

  const stream = await openai.chat.completions.create({
    model, messages, tools: [weatherTool], ...sampling, stream: true,
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
  });
  let name = '';
  let args = '';
  let finish = null;
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta;
    for (const t of d?.tool_calls ?? []) {
      name += t.function?.name ?? '';
      args += t.function?.arguments ?? '';
    }
    assert.ok(!(d?.content ?? '').includes('tool'), 'no tool-call markup in content');
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(name, 'get_weather');
  assert.equal(typeof JSON.parse(args).city, 'string');
  assert.equal(finish, 'tool_calls');
  say('openai: streamed delta.tool_calls');

  const structured = await openai.chat.completions.create({
    model, messages: [{ role: 'user', content: 'A person' }], temperature: 1, seed: 4, max_tokens: 64,
    response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema: personSchema } },
  });
  checkPerson(structured.choices[0].message.content);
  say('openai: response_format json_schema');

  const options = { temperature: 1, seed: 5, num_predict: 64 };
  const formatted = await ollama.chat({
    model, messages: [{ role: 'user', content: 'A person' }], format: personSchema, options, stream: false,
  });
  checkPerson(formatted.message.content);
  say('ollama: format schema');

  // The served format is the hand-written R1 one (no tool history there): tools alone.
  const withTools = await ollama.chat({
    model, messages, tools: [weatherTool], options: { temperature: 0, num_predict: 8 }, stream: false,
  });
  assert.equal(withTools.done, true);
  for (const c of withTools.message.tool_calls ?? []) assert.equal(typeof c.function.arguments, 'object');
  say('ollama: tools');
}

try {
  await reasoningChecks();  // alone: the cache and greedy order stay simple
  // Both clients at once, as two users of one server would be.
  await Promise.all([openaiChecks(), ollamaChecks()]);
  await toolAndFormatChecks();
  console.log('all client checks passed');
} catch (e) {
  console.error('FAILED:', e);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
}
