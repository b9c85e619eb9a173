/**
 * End to end over real HTTP: BigState answers 400 with a `desc` that echoes the API key in some encoding (the red
 * team's forms). The whole description is withheld, so no form of the key reaches the error, the failure reason,
 * the SNS e-mail, the EventBridge event or a log line. A description that does not echo the key is kept.
 */
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { BadRequestError, BigStateError } from '../../functions/bigstate/errors.js';
import { MAX_DISPLAY_PATH } from '../../functions/bigstate/transport.js';
import { runAudit } from '../../functions/core/audit.js';
import { eventParts, snsBody, snsSubject } from '../../functions/core/messages.js';
import { HOST, MemoryStore, RecordingChannel, RecordingLogger } from '../core/support/fakes.js';
import { keyForms, leakedForms } from './key-forms.js';
import { collect, Fixture, failure } from './support.js';

const fixture = new Fixture();
afterEach(() => fixture.close());

const WITHHELD = '(description withheld: it echoed the API key)';

/** Keys with `+ / = " \` (one with `\t` as written, which a JSON decoder reads as a tab). */
const KEYS = ['Kx9+vQ/7=Zp"M\\t2RwQ8sLq4N', 'sk-T3st+/="\\key-0123456789'];

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const html = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/** Every form the red team reported, and each form of keyForms, as a desc would hold it. */
function echoes(key: string): Array<{ label: string; form: string }> {
  const extra: Record<string, string> = {
    'hex, upper case': Buffer.from(key).toString('hex').toUpperCase(),
    'wrapped over two lines': `${key.slice(0, 12)}\n ${key.slice(12)}`,
    'wrapped with CRLF every 5 characters': key.replace(/(.{5})/g, '$1\r\n'),
    'HTML-escaped twice': html(html(key)),
    'JSON-escaped, then HTML-escaped': html(JSON.stringify(key)),
    'base64, MIME-wrapped at 76, inside a header dump': base64(
      `Authorization-Header-Dump: x-api-key: ${key} ${key}`,
    ).replace(/(.{76})/g, '$1\r\n'),
    'base64 with line breaks every 20': base64(`Authorization-Header-Dump: ${key}${key}`).replace(
      /(.{20})/g,
      '$1\r\n',
    ),
    ...Object.fromEntries(
      [1, 2, 3].map((before) => [
        `base64 inside a blob, ${before} bytes in`,
        base64(`${'u:x'.slice(0, before)}${key}@tail`),
      ]),
    ),
    'cut by the server after 60% of it': `${key.slice(0, Math.ceil(key.length * 0.6))}…`,
    'hex, cut by the server after 60% of it': Buffer.from(key.slice(0, Math.ceil(key.length * 0.6))).toString(
      'hex',
    ),
  };
  return Object.entries({ ...keyForms(key), ...extra }).map(([label, form]) => ({ label, form }));
}

/** Every text an error shows: message, String(), its own fields as JSON, inspect with the cause chain. */
function shown(error: unknown): string[] {
  const fields: Record<string, unknown> = {};
  for (const name of Object.getOwnPropertyNames(error))
    fields[name] = (error as Record<string, unknown>)[name];
  return [(error as Error).message, String(error), JSON.stringify(fields), inspect(error, { depth: 8 })];
}

function expectNoForm(texts: readonly string[], key: string): void {
  for (const text of texts) expect(leakedForms(text, key), text).toEqual([]);
}

/** The key's forms really are in the desc the server sends: the check finds them there (not vacuous). */
function expectFormsVisible(desc: string, key: string): void {
  expect(leakedForms(desc, key).length).toBeGreaterThan(0);
}

describe.each(KEYS)('BigState echoes the key %s in a 400', (key) => {
  it.each(echoes(key))('withholds the description that holds it $label, everywhere', async ({ form }) => {
    const simulator = await fixture.simulator({ apiKeys: [key], principals: { root: { keys: ['k1'] } } });
    const clientLines: string[] = [];
    const client = fixture.client(simulator.url, {
      apiKey: async () => key,
      logger: {
        debug: (message, ...extra) => clientLines.push(message, JSON.stringify(extra)),
        warn: (message, ...extra) => clientLines.push(message, JSON.stringify(extra)),
      },
    });
    const desc = `x-api-key ${form} is not valid for this principal`;
    expectFormsVisible(desc, key);
    simulator.inject(
      'root',
      { type: 'status', status: 400, body: JSON.stringify({ error: 6, desc }) },
      { times: Number.POSITIVE_INFINITY },
    );

    // The client's error.
    const error = await failure(collect(client.listApiKeys('root')));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ code: 6, desc: WITHHELD, status: 400 });
    expect((error as Error).message).toContain(`HTTP 400: bad request (400): BigState error 6 "${WITHHELD}"`);
    expectNoForm(shown(error), key);

    // The audit's failure: its reason, the e-mail, the event and every log line.
    const sns = new RecordingChannel('sns');
    const logger = new RecordingLogger();
    const summary = await runAudit(
      { bigstate: client, store: new MemoryStore(), channels: [sns], logger },
      { runId: 'run-1', host: HOST, principals: ['root'] },
    );
    const outcome = summary.principals[0];
    expect(outcome).toMatchObject({ principal: 'root', status: 'failed' });
    expect(outcome?.reason).toContain(WITHHELD);
    const notice = sns.ofKind('failed')[0];
    if (notice === undefined) throw new Error('no failure notice');
    expect(notice.reason).toContain(WITHHELD);
    expectNoForm(
      [
        outcome?.reason ?? '',
        notice.reason,
        snsSubject(notice),
        snsBody(notice),
        eventParts(notice).detail,
        JSON.stringify(summary),
        ...logger.lines.map((line) => JSON.stringify(line)),
        ...clientLines,
      ],
      key,
    );
  });

  it.each([
    ['a plain description', 'Invalid request'],
    ['one naming the principal and the header', 'Invalid request: x-api-key may not list "root" & <others>'],
    ['an unrelated base64 blob', `trace ${base64('an unrelated trace of the failing request, 2025-06-01')}`],
    ['an unrelated MIME-wrapped blob', base64('z'.repeat(200)).replace(/(.{76})/g, '$1\r\n')],
    ['another key of the same shape', `no key ${key.slice(0, 6)}-0ther/key+zz99"\\`],
    ['less than half of the key', `no key ${key.slice(0, 8)}…`],
  ])('keeps a description that does not echo it: %s', async (_label, desc) => {
    const simulator = await fixture.simulator({ apiKeys: [key], principals: { root: { keys: ['k1'] } } });
    const client = fixture.client(simulator.url, { apiKey: async () => key });
    simulator.inject('root', { type: 'status', status: 400, body: JSON.stringify({ error: 6, desc }) });
    const error = await failure(collect(client.listApiKeys('root')));
    expect(error).toMatchObject({ code: 6, desc });
    expect((error as Error).message).toContain(`BigState error 6 "${desc}"`);
    expectNoForm(shown(error), key);
  });
});

describe('sizes', () => {
  const KEY = KEYS[0] ?? '';

  it('caps a desc past the examined window: nothing beyond it can show', async () => {
    const simulator = await fixture.simulator({ apiKeys: [KEY], principals: { root: { keys: ['k1'] } } });
    const client = fixture.client(simulator.url, { apiKey: async () => KEY });
    // 10 KB of text, then the key hex-encoded: never examined, and never shown either.
    const desc = `${'x'.repeat(10_000)}${Buffer.from(KEY).toString('hex')}`;
    simulator.inject('root', { type: 'status', status: 400, body: JSON.stringify({ error: 6, desc }) });
    const error = await failure(collect(client.listApiKeys('root')));
    expect(error).toMatchObject({ desc: `${'x'.repeat(299)}…` });
    expectNoForm(shown(error), KEY);
  });

  it.each([
    ['a principal', (name: string) => ({ principal: name, pattern: undefined })],
    ['a key-name pattern', (name: string) => ({ principal: 'root', pattern: name })],
  ])('caps the request path errors show when %s is 20,000 characters long', async (_label, make) => {
    const simulator = await fixture.simulator({ apiKeys: [KEY], principals: { root: { keys: ['k1'] } } });
    const client = fixture.client(simulator.url, { apiKey: async () => KEY, retry: { maxAttempts: 1 } });
    const { principal, pattern } = make(`svc-${'é'.repeat(20_000)}`);
    const error = await failure(collect(client.listApiKeys(principal, { pattern })));
    expect(error).toBeInstanceOf(BigStateError);
    const path = (error as BigStateError).path;
    expect(path.length).toBeLessThanOrEqual(MAX_DISPLAY_PATH);
    expect(path).toMatch(/^\/v1\/apikey\/match\?principal=.*…$/);
    // Never cut inside a percent escape.
    expect(path).not.toMatch(/%.?…$/);
    expect((error as Error).message.length).toBeLessThan(MAX_DISPLAY_PATH + 300);
  });
});
