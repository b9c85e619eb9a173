/**
 * Public types of the BigState client. The core of the audit depends on these, not on the client's
 * implementation.
 */
import type { Deadline } from '../commons/deadline.js';

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
export type ApiKeyProvider = (options: {
  readonly refresh: boolean;
  /** Ends the read with the caller's deadline (a secret store that hangs must not outlive the run). */
  readonly signal?: AbortSignal | undefined;
}) => Promise<string>;

/** Options of one paginated walk. */
export interface WalkOptions {
  /** Glob passed through to BigState (`x`, `*x`, `x*`, `*x*`); omitted when undefined. */
  readonly pattern?: string | undefined;
  /**
   * When the walk must end (its time budget, and the caller's signal such as Ctrl-C). When it ends, the request,
   * connection wait or back-off under way stops with a DeadlineExceededError; a back-off wait (or `Retry-After`)
   * that would outlast it fails the request at once instead of sleeping. @default no deadline
   */
  readonly deadline?: Deadline | undefined;
  /** Overrides the client's page limit for this walk. */
  readonly maxPages?: number | undefined;
  /** Called after each page was read (0 for the first): how many pages a walk spanned. */
  readonly onPage?: ((pageIndex: number) => void) | undefined;
}

/** What the audit core needs of BigState: every key of a principal, each name once, in a complete walk. */
export interface ApiKeyLister {
  listApiKeys(principal: string, options?: WalkOptions): AsyncIterable<ApiKeyEntry>;
}

/** What the audit needs of BigState to discover principals and to tell one that is gone from one with no keys. */
export interface PrincipalLister {
  /** Every principal the key can see that matches the pattern, each once, in a complete walk. */
  listPrincipals(options?: WalkOptions): AsyncIterable<PrincipalEntry>;
  /** One principal; `undefined` when BigState answers 404 (no principal has that identifier). */
  getPrincipal(
    principal: string,
    options?: { readonly deadline?: WalkOptions['deadline'] },
  ): Promise<PrincipalEntry | undefined>;
}
