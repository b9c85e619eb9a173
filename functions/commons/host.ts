/**
 * The identity of a BigState host, as a snapshot records it: two spellings of one host compare equal, two hosts
 * never do.
 */

/**
 * Scheme, host name and port (the default port dropped), and path without trailing slashes, all as the WHATWG URL
 * parser normalises them: `HTTPS://API.BigState.dev:443/` and `https://api.bigstate.dev` are the same host.
 * @throws TypeError when `host` is not an absolute URL (configuration validates it before).
 */
export function normalizeHost(host: string | URL): string {
  const url = new URL(String(host));
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}
