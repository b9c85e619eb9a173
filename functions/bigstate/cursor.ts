/**
 * Cursor pagination as BigState does it: `next=0` first, then exactly the cursor the previous page returned, until
 * a page says `-1`. Cursors are opaque decimal text: never computed, never passed through a `number`.
 */
// zod's mini API: tree-shakeable, so the Lambda bundle carries only the schemas used here.
import * as z from 'zod/mini';
import { CursorLoopError, type RequestErrorDetails, TooManyPagesError } from './errors.js';
import { MalformedBodyError, type ParsedBody } from './transport.js';
import type { ApiKeyEntry, PrincipalEntry } from './types.js';

/** The cursor of the first page. */
export const FIRST_CURSOR = '0';
/** The `next` that marks the last page. */
export const LAST_CURSOR = '-1';

/** One page of a walk, with the request that produced it (for error messages). */
export interface Page<T> {
  /** The cursor for the next page as the server wrote it, or `-1`. */
  readonly next: string;
  readonly items: readonly T[];
  readonly request: RequestErrorDetails;
}

/** What a walk needs: a page fetcher and the identity of an item. */
export interface WalkSource<T> {
  fetchPage(cursor: string): Promise<Page<T>>;
  identity(item: T): string;
  readonly maxPages: number;
  /** Called after each page was read (0 for the first). */
  readonly onPage?: ((pageIndex: number) => void) | undefined;
}

/**
 * Yields every item of every page, each identity once (the first occurrence wins: a list that changes while it
 * is paged may show a name twice).
 * @throws CursorLoopError when the server returns a cursor already used in this walk.
 * @throws TooManyPagesError when `maxPages` pages were read and the server still returns a next cursor.
 * @throws whatever `fetchPage` throws.
 */
export async function* walk<T>(source: WalkSource<T>): AsyncGenerator<T, void, undefined> {
  const cursors = new Set<string>([FIRST_CURSOR]);
  const seen = new Set<string>();
  let cursor = FIRST_CURSOR;
  for (let pages = 1; ; pages++) {
    const page = await source.fetchPage(cursor);
    source.onPage?.(pages - 1);
    for (const item of page.items) {
      const id = source.identity(item);
      if (seen.has(id)) continue;
      seen.add(id);
      yield item;
    }
    if (page.next === LAST_CURSOR) return;
    if (cursors.has(page.next)) throw new CursorLoopError(page.next, page.request);
    if (pages >= source.maxPages) throw new TooManyPagesError(source.maxPages, page.request);
    cursors.add(page.next);
    cursor = page.next;
  }
}

/** A cursor as JSON source text: `-1`, `0` or a positive integer without sign, fraction or exponent. */
const CURSOR_TEXT = /^(?:-1|0|[1-9][0-9]*)$/;

const apiKeyPageSchema = z.object({
  apiKeys: z.array(z.looseObject({ name: z.string().check(z.minLength(1)) })),
});

const principalSchema = z.looseObject({
  principal: z.string().check(z.minLength(1)),
  type: z.optional(z.number()),
  name: z.optional(z.string()),
});

const principalPageSchema = z.object({ principals: z.array(principalSchema) });

/**
 * Reads the `next` cursor of a page body as its source text.
 * @throws MalformedBodyError when `next` is missing, not a JSON number, or not an integer cursor.
 */
export function readNext(body: ParsedBody): string {
  const json = body.json;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new MalformedBodyError('the body is not a JSON object');
  }
  const next = (json as Record<string, unknown>).next;
  if (typeof next !== 'number' || body.nextSource === undefined) {
    throw new MalformedBodyError('`next` is missing or not a JSON number');
  }
  if (!CURSOR_TEXT.test(body.nextSource)) {
    throw new MalformedBodyError('`next` is not an integer cursor (-1, 0 or a positive integer)');
  }
  return body.nextSource;
}

/**
 * Parses one `GET /v1/apikey/match` page.
 * @throws MalformedBodyError when the page does not have the documented shape.
 */
export function parseApiKeyPage(body: ParsedBody): { next: string; items: ApiKeyEntry[] } {
  const next = readNext(body);
  parseWith(apiKeyPageSchema, body.json);
  // The entries as JSON.parse made them, not zod's copies: a copy drops a field named `__proto__`, and every
  // field of a key is kept.
  return { next, items: (body.json as { apiKeys: ApiKeyEntry[] }).apiKeys };
}

/**
 * Parses one `GET /v1/principal/match` page.
 * @throws MalformedBodyError when the page does not have the documented shape.
 */
export function parsePrincipalPage(body: ParsedBody): { next: string; items: PrincipalEntry[] } {
  const next = readNext(body);
  return { next, items: parseWith(principalPageSchema, body.json).principals };
}

/**
 * Parses the body of `GET /v1/principal`.
 * @throws MalformedBodyError when it is not a principal object.
 */
export function parsePrincipal(body: ParsedBody): PrincipalEntry {
  return parseWith(principalSchema, body.json);
}

/**
 * Validates a body against a schema, with the messages of `issueMessage`.
 * @throws MalformedBodyError naming where the body differs from the schema.
 */
export function parseWith<S extends z.ZodMiniType>(schema: S, json: unknown): z.infer<S> {
  const result = schema.safeParse(json, { error: issueMessage });
  if (!result.success) throw new MalformedBodyError(describeIssues(result.error));
  return result.data;
}

/** Names where the body differs from the schema, e.g. `apiKeys.0.name: expected string, received number`. */
export function describeIssues(error: z.core.$ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length === 0 ? '(body)' : issue.path.join('.')}: ${issue.message}`)
    .join('; ');
}

/**
 * The message of one issue. zod/mini loads no locale (its default message is a bare "Invalid input"), so the
 * client writes its own. It names the expected and the received type, never a value from the body.
 */
export function issueMessage(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}, received ${typeOf(issue.input)}`;
    case 'too_small':
      return issue.origin === 'string'
        ? `expected a string of at least ${issue.minimum} character${issue.minimum === 1 ? '' : 's'}`
        : `expected ${issue.origin} of at least ${issue.minimum}`;
    default:
      return `invalid value (${issue.code})`;
  }
}

/** The JSON type of a value as messages name it (`null` and `array` apart from `object`). */
function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}
