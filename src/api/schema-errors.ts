/**
 * @module api/schema-errors
 * Nova's words for a request that fails its JSON schema. Ajv (with no type coercion, see
 * app.ts) decides whether a request is valid; this module words the refusal as Nova does:
 * Nova's `_SchemaValidator` (nova/api/validation/validators.py) runs jsonschema's
 * Draft4Validator, raises the *first* error of `iter_errors` (keywords in the order the schema
 * writes them, depth first) and wraps it as "Invalid input for field/attribute <last path
 * element>. Value: <str(value)>. <jsonschema's message>" for a body, "Invalid input for query
 * parameters <first path element>. ..." for a query, or jsonschema's message alone when the
 * failure is at the top. Ajv reports a different first error (it checks `required` and
 * `additionalProperties` before `properties`), so the first failure is found here by walking the
 * schema in jsonschema's order, for the keywords Porthole's request schemas use; values are
 * quoted as Python's repr() and str() quote them, since Nova's messages do.
 */

type Schema = Readonly<Record<string, unknown>>;
export type SchemaPart = 'body' | 'query';

export interface SchemaFailure {
  /** Where in the request the failing value is (property names and array indexes). */
  readonly path: readonly (string | number)[];
  readonly value: unknown;
  /** jsonschema 4's message for the failing keyword. */
  readonly message: string;
}

/** A quoted value longer than this is cut (Nova quotes it whole; a 64 KiB value quoted twice helps nobody). */
const MAX_QUOTE = 200;

/**
 * The message Nova gives for `data` failing `schema`, or undefined when no keyword this module
 * knows fails (the caller then words Ajv's own error).
 */
export function novaSchemaMessage(schema: Schema, data: unknown, part: SchemaPart): string | undefined {
  const failure = firstFailure(schema, data === undefined ? null : data, []);
  if (!failure) return undefined;
  return wrapFailure(failure, part);
}

/** `_SchemaValidator.validate`'s wording around jsonschema's message. */
export function wrapFailure(f: SchemaFailure, part: SchemaPart): string {
  if (f.path.length === 0) return f.message;
  if (part === 'query') return `Invalid input for query parameters ${f.path[0]}. Value: ${pyStr(f.value)}. ${f.message}`;
  return `Invalid input for field/attribute ${f.path[f.path.length - 1]}. Value: ${pyStr(f.value)}. ${f.message}`;
}

/** The first failure of `value` against `schema` in jsonschema's (and so Nova's) order. */
export function firstFailure(schema: Schema, value: unknown, path: readonly (string | number)[]): SchemaFailure | undefined {
  // Ajv's (OpenAPI's) `nullable`: jsonschema would read it as `type: [..., 'null']`
  if (schema.nullable === true && value === null) return undefined;
  for (const [keyword, arg] of Object.entries(schema)) {
    const failure = checkKeyword(keyword, arg, schema, value, path);
    if (failure) return failure;
  }
  return undefined;
}

function checkKeyword(keyword: string, arg: unknown, schema: Schema, value: unknown, path: readonly (string | number)[]): SchemaFailure | undefined {
  const fail = (message: string): SchemaFailure => ({ path, value, message });
  switch (keyword) {
    case 'type': {
      const types = [...(Array.isArray(arg) ? arg : [arg]), ...(schema.nullable === true ? ['null'] : [])] as string[];
      return types.some((t) => isType(value, t)) ? undefined : fail(`${pyRepr(value)} is not of type ${types.map((t) => pyRepr(t)).join(', ')}`);
    }
    case 'enum':
      return (arg as unknown[]).some((e) => sameJson(e, value)) ? undefined : fail(`${pyRepr(value)} is not one of ${pyRepr(arg)}`);
    case 'properties': {
      if (!isType(value, 'object')) return undefined;
      const obj = value as Record<string, unknown>;
      for (const [name, sub] of Object.entries(arg as Record<string, Schema>)) {
        if (!Object.hasOwn(obj, name)) continue;
        const failure = firstFailure(sub, obj[name], [...path, name]);
        if (failure) return failure;
      }
      return undefined;
    }
    case 'required': {
      if (!isType(value, 'object')) return undefined;
      const missing = (arg as string[]).find((name) => !Object.hasOwn(value as object, name));
      return missing === undefined ? undefined : fail(`${pyRepr(missing)} is a required property`);
    }
    case 'additionalProperties': {
      if (!isType(value, 'object') || arg === true) return undefined;
      const declared = (schema.properties ?? {}) as Record<string, unknown>;
      const extras = Object.keys(value as object).filter((k) => !Object.hasOwn(declared, k));
      if (extras.length === 0) return undefined;
      if (arg === false) return fail(`Additional properties are not allowed (${extras.sort().map((k) => pyRepr(k)).join(', ')} ${extras.length === 1 ? 'was' : 'were'} unexpected)`);
      for (const k of extras) {
        const failure = firstFailure(arg as Schema, (value as Record<string, unknown>)[k], [...path, k]);
        if (failure) return failure;
      }
      return undefined;
    }
    case 'minProperties':
      return isType(value, 'object') && Object.keys(value as object).length < (arg as number) ? fail(`${pyRepr(value)} does not have enough properties`) : undefined;
    case 'maxProperties':
      return isType(value, 'object') && Object.keys(value as object).length > (arg as number) ? fail(`${pyRepr(value)} has too many properties`) : undefined;
    case 'items': {
      if (!Array.isArray(value) || typeof arg !== 'object' || arg === null || Array.isArray(arg)) return undefined;
      for (let i = 0; i < value.length; i++) {
        const failure = firstFailure(arg as Schema, value[i], [...path, i]);
        if (failure) return failure;
      }
      return undefined;
    }
    case 'minItems':
      return Array.isArray(value) && value.length < (arg as number) ? fail(`${pyRepr(value)} is too short`) : undefined;
    case 'maxItems':
      return Array.isArray(value) && value.length > (arg as number) ? fail(`${pyRepr(value)} is too long`) : undefined;
    case 'uniqueItems':
      return arg === true && Array.isArray(value) && value.some((v, i) => value.findIndex((w) => sameJson(v, w)) !== i) ? fail(`${pyRepr(value)} has non-unique elements`) : undefined;
    // lengths in code points, as Python's len() and Ajv count them
    case 'minLength':
      return typeof value === 'string' && [...value].length < (arg as number) ? fail(`${pyRepr(value)} is too short`) : undefined;
    case 'maxLength':
      return typeof value === 'string' && [...value].length > (arg as number) ? fail(`${pyRepr(value)} is too long`) : undefined;
    case 'pattern':
      return typeof value === 'string' && !new RegExp(arg as string, 'u').test(value) ? fail(`${pyRepr(value)} does not match ${pyRepr(arg)}`) : undefined;
    // Nova's own minimum/maximum also read a number from a string ('10'); a string never reaches
    // them in Porthole's schemas, whose `type` comes first
    case 'minimum': {
      const n = numberOf(value);
      return n !== undefined && n < (arg as number) ? { path, value, message: `${pyRepr(n)} is less than the minimum of ${pyRepr(arg)}` } : undefined;
    }
    case 'maximum': {
      const n = numberOf(value);
      return n !== undefined && n > (arg as number) ? { path, value, message: `${pyRepr(n)} is greater than the maximum of ${pyRepr(arg)}` } : undefined;
    }
    default:
      return undefined;
  }
}

/** Draft 4's types (a boolean is no number; JSON cannot tell 5900.0 from 5900 here, Python can). */
function isType(value: unknown, type: string): boolean {
  switch (type) {
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    case 'null':
      return value === null || value === undefined;
    default:
      return false;
  }
}

function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

/** Python's str(): a string as itself, anything else as repr(). */
export function pyStr(value: unknown): string {
  if (typeof value === 'string') return value.length > MAX_QUOTE ? `${value.slice(0, MAX_QUOTE)}...` : value;
  return pyRepr(value);
}

/**
 * Python's repr() of a value as json.loads would have made it (dict, list, str, int or float,
 * True, False, None), cut at MAX_QUOTE characters. Never a throw and never deep recursion: the
 * output budget ends the walk, so a body nested thousands deep costs a few hundred steps.
 */
export function pyRepr(value: unknown): string {
  const out: string[] = [];
  let length = 0;
  const put = (s: string): boolean => {
    out.push(s);
    length += s.length;
    return length <= MAX_QUOTE;
  };
  const walk = (v: unknown): boolean => {
    if (v === null || v === undefined) return put('None');
    if (v === true) return put('True');
    if (v === false) return put('False');
    if (typeof v === 'number') return put(pyNumber(v));
    if (typeof v === 'string') return put(pyString(v));
    if (Array.isArray(v)) {
      if (!put('[')) return false;
      for (let i = 0; i < v.length; i++) {
        if (i > 0 && !put(', ')) return false;
        if (!walk(v[i])) return false;
      }
      return put(']');
    }
    if (typeof v === 'object') {
      if (!put('{')) return false;
      let first = true;
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue;
        if (!first && !put(', ')) return false;
        first = false;
        if (!put(pyString(k)) || !put(': ') || !walk((v as Record<string, unknown>)[k])) return false;
      }
      return put('}');
    }
    return put(String(v));
  };
  if (walk(value)) return out.join('');
  return `${out.join('').slice(0, MAX_QUOTE)}...`;
}

/** repr() of a str: single quotes unless the text has one and no double quote; non-printables escaped. */
function pyString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let body = '';
  for (const ch of s) {
    if (ch === quote || ch === '\\') body += `\\${ch}`;
    else if (ch === '\n') body += '\\n';
    else if (ch === '\r') body += '\\r';
    else if (ch === '\t') body += '\\t';
    else if (ch !== ' ' && /[\p{C}\p{Z}]/u.test(ch)) {
      // str.isprintable() is false for the Other and Separator categories but the space
      const cp = ch.codePointAt(0)!;
      body += cp < 0x100 ? `\\x${hex(cp, 2)}` : cp < 0x10000 ? `\\u${hex(cp, 4)}` : `\\U${hex(cp, 8)}`;
    } else body += ch;
    if (body.length > MAX_QUOTE) break;
  }
  return quote + body + quote;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/**
 * repr() of what json.loads makes of a number: an integral value is taken for an int (JSON
 * writes ports and counts so), anything else for a float: `inf`, `2.5`, `1e+30`, `1e-05`.
 */
function pyNumber(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return String(n);
  const [mantissa, exp] = n.toExponential().split('e') as [string, string];
  const e = Number(exp);
  // float_repr_style 'short': positional from 1e-4 up to 1e16, scientific outside
  if (e >= -4 && e < 16) return String(n);
  return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}
