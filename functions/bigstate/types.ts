/**
 * Public types of the BigState client. The core of the audit depends on these, not on the client's
 * implementation.
 */

/** One API key as `GET /v1/apikey/match` lists it. Its identity is `name`; any other field is kept as is. */
export interface ApiKeyEntry {
  readonly name: string;
  readonly [field: string]: unknown;
}

/** One principal as `GET /v1/principal/match` and `GET /v1/principal` return it (`type` 1 = application, 2 = user). */
export interface PrincipalEntry {
  readonly principal: string;
  readonly type?: number;
  readonly name?: string;
  readonly [field: string]: unknown;
}

/**
 * Supplies the BigState API key. `refresh: true` asks for a fresh read (after a 401, for rotation);
 * the client asks for it at most once per request.
 */
export type ApiKeyProvider = (options: { readonly refresh: boolean }) => Promise<string>;

/** Options of one paginated walk. */
export interface WalkOptions {
  /** Glob passed through to BigState (`x`, `*x`, `x*`, `*x*`); omitted when undefined. */
  readonly pattern?: string | undefined;
  /** Aborts the walk (and any request or back-off under way) with a DeadlineExceededError. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Epoch milliseconds (Date.now) by which the walk must end: it aborts then with a DeadlineExceededError, and a
   * back-off wait (or `Retry-After`) that would run past it fails the request at once instead of sleeping.
   */
  readonly deadline?: number | undefined;
  /** Overrides the client's page limit for this walk. */
  readonly maxPages?: number | undefined;
}

/** What the audit core needs of BigState: every key of a principal, each name once, in a complete walk. */
export interface ApiKeyLister {
  listApiKeys(principal: string, options?: WalkOptions): AsyncIterable<ApiKeyEntry>;
}
