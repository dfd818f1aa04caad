/**
 * @module log/redact
 * The last line of defence for secrets in log output, whatever the format: a field whose name
 * says it holds a secret (`token`, `password`, `key`, `secret`, `apiKey`, `db_password`, ...) is
 * printed as `***`, and text that carries a console token in URL form (`?token=...`,
 * `path=%3Ftoken%3D...`) or a password in a URL (`mysql://user:pw@host`) has it masked. The
 * first line stays the callers' discipline: they log `tokenHash` (an 8-hex SHA-256 prefix), never
 * the token, as Nova's proxy logs `token='***'`.
 */

export const MASK = '***';

/** The last word of a field name (camelCase, snake_case, kebab-case) that makes it a secret. */
const SECRET_WORDS = new Set(['token', 'password', 'passwd', 'pw', 'secret', 'key', 'credential', 'credentials', 'authorization', 'cookie', 'passphrase']);

/** Whether a field called `name` holds a secret: `token`, `jwtSecret`, `db_password`; not `tokenHash`, `keyFile`. */
export function isSecretName(name: string): boolean {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
  return words.length > 0 && SECRET_WORDS.has(words[words.length - 1]!);
}

// `token=<value>` in a query string, also percent-encoded inside noVNC's `path` parameter
const TOKEN_IN_URL = /((?:^|[?&;\s"']|%3F|%26)token(?:=|%3D))[^&\s"';%]+/gi;
// `scheme://user:password@` (database and Redis URLs)
const PASSWORD_IN_URL = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s"']*:)[^@/\s"']+@/gi;

/** `text` with console tokens in URLs and passwords in URLs masked. */
export function redactText(text: string): string {
  if (!text.includes('=') && !text.includes('%3') && !text.includes('://')) return text;
  return text.replace(TOKEN_IN_URL, `$1${MASK}`).replace(PASSWORD_IN_URL, `$1${MASK}@`);
}

/** `value` with secret-named fields masked and text redacted, at any depth (bounded). */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8) return '[nested]';
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isSecretName(k) && v !== null && v !== undefined ? MASK : redactValue(v, depth + 1);
  return out;
}
