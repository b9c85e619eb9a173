import { afterEach, describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import { parseWith } from '../../functions/bigstate/cursor.js';
import { ProtocolError } from '../../functions/bigstate/errors.js';
import { MalformedBodyError } from '../../functions/bigstate/transport.js';
import { collect, Fixture, failure } from './support.js';

const fixture = new Fixture();
afterEach(() => fixture.close());

/** The message of the ProtocolError a one-attempt walk over a single scripted page ends with. */
async function pageError(body: string): Promise<string> {
  const server = await fixture.fakeServer(() => ({ body }));
  const client = fixture.client(server.url, { retry: { maxAttempts: 1 } });
  const error = await failure(collect(client.listApiKeys('p')));
  expect(error).toBeInstanceOf(ProtocolError);
  return (error as Error).message;
}

describe('a page whose cursor is unusable', () => {
  it.each([
    { body: '[]', says: 'the body is not a JSON object' },
    { body: 'null', says: 'the body is not a JSON object' },
    { body: '5', says: 'the body is not a JSON object' },
    { body: '"-1"', says: 'the body is not a JSON object' },
    { body: '{"apiKeys":[]}', says: '`next` is missing or not a JSON number' },
    { body: '{"next":"-1","apiKeys":[]}', says: '`next` is missing or not a JSON number' },
    { body: '{"next":null,"apiKeys":[]}', says: '`next` is missing or not a JSON number' },
    {
      body: '{"next":1.5,"apiKeys":[]}',
      says: '`next` is not an integer cursor (-1, 0 or a positive integer)',
    },
    {
      body: '{"next":-2,"apiKeys":[]}',
      says: '`next` is not an integer cursor (-1, 0 or a positive integer)',
    },
    { body: '{"next":07,"apiKeys":[]}', says: 'the body is not complete JSON' },
  ])('$body: $says', async ({ body, says }) => {
    expect(await pageError(body)).toBe(
      `BigState GET /v1/apikey/match?principal=p&next=0 -> HTTP 200: malformed response: ${says} (after 1 attempt)`,
    );
  });
});

describe('where a body differs from its schema', () => {
  it('names at most the first three differences', async () => {
    expect(await pageError('{"next":-1,"apiKeys":[1,true,null,"d"]}')).toContain(
      'malformed response: apiKeys.0: expected object, received number; apiKeys.1: expected object, ' +
        'received boolean; apiKeys.2: expected object, received null (after 1 attempt)',
    );
  });

  it.each<{ schema: z.ZodMiniType; json: unknown; says: string }>([
    {
      schema: z.string().check(z.minLength(3)),
      json: 'ab',
      says: '(body): expected a string of at least 3 characters',
    },
    {
      schema: z.object({ name: z.string().check(z.minLength(1)) }),
      json: { name: '' },
      says: 'name: expected a string of at least 1 character',
    },
    {
      schema: z.array(z.number()).check(z.minLength(2)),
      json: [1],
      says: '(body): expected array of at least 2',
    },
    { schema: z.enum(['a', 'b']), json: 'secret-value', says: '(body): invalid value (invalid_value)' },
  ])('$says', ({ schema, json, says }) => {
    let error: unknown;
    try {
      parseWith(schema, json);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(MalformedBodyError);
    expect((error as Error).message).toBe(says);
  });
});
