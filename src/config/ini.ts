/**
 * @module config/ini
 * Reads `nova.conf`-style INI text the way oslo.config's iniparser does: `[section]` headers,
 * `name = value` or `name: value`, `#` and `;` comment lines, indented continuation lines, one
 * pair of matching quotes stripped, and a repeated name keeps every value (the last one wins
 * for single-valued options). Each value remembers its line for error messages.
 */

export interface IniValue {
  readonly value: string;
  readonly line: number;
}

/** section → option → values in file order */
export type IniDocument = Map<string, Map<string, IniValue[]>>;

export class IniSyntaxError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

/** `headers`, when given, gets the line of each section's first header (for messages about a section). */
export function parseIni(text: string, headers?: Map<string, number>): IniDocument {
  const doc: IniDocument = new Map();
  let section: Map<string, IniValue[]> | undefined;
  let last: { list: IniValue[]; index: number } | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const lineNo = i + 1;
    if (raw.trim() === '' ) { last = undefined; continue; }
    const first = raw[0];
    if (first === '#' || first === ';') continue;
    if ((first === ' ' || first === '\t') && last) {
      // oslo.config: an indented line continues the previous value
      const prev = last.list[last.index]!;
      last.list[last.index] = { value: `${prev.value}\n${raw.trim()}`, line: prev.line };
      continue;
    }
    const line = raw.trim();
    if (line.startsWith('[')) {
      if (!line.endsWith(']') || line.length < 3) throw new IniSyntaxError(lineNo, `invalid section header ${JSON.stringify(line)}`);
      const name = line.slice(1, -1).trim();
      section = doc.get(name);
      if (!section) { section = new Map(); doc.set(name, section); headers?.set(name, lineNo); }
      last = undefined;
      continue;
    }
    if (!section) throw new IniSyntaxError(lineNo, 'option outside of any [section]');
    const sep = line.search(/[=:]/);
    if (sep <= 0) throw new IniSyntaxError(lineNo, `expected "name = value", got ${JSON.stringify(line)}`);
    const name = line.slice(0, sep).trim();
    let value = line.slice(sep + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value[0] === value[value.length - 1]) {
      value = value.slice(1, -1);
    }
    let values = section.get(name);
    if (!values) { values = []; section.set(name, values); }
    values.push({ value, line: lineNo });
    last = { list: values, index: values.length - 1 };
  }
  return doc;
}
