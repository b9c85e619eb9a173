/**
 * An independent check that a text holds no form of a secret, for the tests: it does not use `echoesSecret` or
 * `redactSecrets`. It re-encodes the secret in each form a server could echo it in and searches the text for each
 * (ignoring case and white space), and decodes every base64 run and hex run of the text to search that too.
 */

const url = encodeURIComponent;
const json = (text: string) => JSON.stringify(text).slice(1, -1);
const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const base64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
const hex = (text: string) => Buffer.from(text, 'utf8').toString('hex');
const html = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/** The forms a server could echo a secret in, by label (each a whole encoding of the secret alone). */
export function keyForms(secret: string): Record<string, string> {
  return {
    raw: secret,
    'upper-cased': secret.toUpperCase(),
    'lower-cased': secret.toLowerCase(),
    reversed: Array.from(secret).reverse().join(''),
    encodeURIComponent: url(secret),
    'encodeURIComponent, lower-case hex': url(secret).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    'every byte percent-encoded': hex(secret).replace(/(..)/g, '%$1'),
    'form-encoded': new URLSearchParams({ v: secret }).toString().slice(2),
    'percent-encoded twice': url(url(secret)),
    'percent-encoded three times': url(url(url(secret))),
    'JSON-escaped': json(secret),
    'JSON-escaped twice': json(json(secret)),
    'JSON \\u escapes': Array.from(secret, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(
      '',
    ),
    'HTML-escaped': html(secret),
    'HTML numeric entities': Array.from(secret, (c) => `&#${c.codePointAt(0)};`).join(''),
    hex: hex(secret),
    'base64 (unpadded)': base64(secret).replace(/=+$/, ''),
    base64url: base64url(secret),
    'base64 of the upper-cased key': base64(secret.toUpperCase()).replace(/=+$/, ''),
    'base64 of the lower-cased key': base64(secret.toLowerCase()).replace(/=+$/, ''),
    'base64 of the URL-encoded key': base64(url(secret)).replace(/=+$/, ''),
    'base64 of base64': base64(base64(secret)).replace(/=+$/, ''),
    'quoted-printable': secret.replace(/=/g, '=3D'),
  };
}

/**
 * The labels of the forms of `secret` found in `text`: any form of keyForms (white space removed, case ignored);
 * the secret's raw text or any 10-character piece of it (case ignored) in the text, or in the decoding of any
 * base64 run (at each of its four offsets) or hex run (at each of its two offsets).
 */
export function leakedForms(text: string, secret: string): string[] {
  const compact = text.replace(/\s+/g, '');
  const lower = compact.toLowerCase();
  const found = Object.entries(keyForms(secret))
    .filter(([, form]) => lower.includes(form.replace(/\s+/g, '').toLowerCase()))
    .map(([label]) => label);
  const views: Array<[string, string]> = [['text', lower]];
  for (const run of compact.match(/[A-Za-z0-9+/_-]{8,}/g) ?? []) {
    for (let offset = 0; offset < 4; offset++) {
      views.push([
        'decoded base64 run',
        Buffer.from(run.slice(offset), 'base64').toString('latin1').toLowerCase(),
      ]);
    }
  }
  for (const run of compact.match(/[0-9a-fA-F]{8,}/g) ?? []) {
    for (const offset of [0, 1]) {
      views.push(['decoded hex run', Buffer.from(run.slice(offset), 'hex').toString('latin1').toLowerCase()]);
    }
  }
  const raw = secret.toLowerCase();
  for (const [label, view] of views) {
    if (view.includes(raw)) found.push(`${label}: the key`);
    for (let start = 0; start + 10 <= raw.length; start++) {
      if (view.includes(raw.slice(start, start + 10)))
        found.push(`${label}: ${secret.slice(start, start + 10)}`);
    }
  }
  return [...new Set(found)];
}
