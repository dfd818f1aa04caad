/**
 * @module config/known-names
 * Which section and option names a config may hold without a warning: Porthole's own
 * (`options.ts`) and every one Nova knows (`nova-options.json`, generated from Debian's
 * python3-nova 26.2.2 by `scripts/nova-options.py`), since one nova.conf serves every Nova
 * service and holds hundreds of options Porthole never reads, and an upgraded one keeps names
 * older Nova releases had. A name that is none of these, in a section Porthole reads, is a typo
 * until shown otherwise: it gets a message naming the closest
 * known name. Options of sections Porthole does not read are not looked at.
 */
import { readFileSync } from 'node:fs';
import { closestName } from './suggest.ts';
import { OPTIONS, optionNames, sections, type SectionName } from './options.ts';

interface NovaOptions {
  readonly nova: string;
  readonly sections: Readonly<Record<string, readonly string[]>>;
  /** `group.name` of a deprecated name → `group.name` of the option Nova reads it as. */
  readonly aliases: Readonly<Record<string, string>>;
  /** Names of any section that older Nova releases had: an upgraded nova.conf keeps them, Nova ignores them. */
  readonly historical: readonly string[];
}

let nova: { sections: Map<string, ReadonlySet<string>>; aliases: ReadonlyMap<string, string>; historical: ReadonlySet<string> } | undefined;

/** Read on first use only: a config with no unknown name never parses the 46 kB. */
function novaNames(): NonNullable<typeof nova> {
  if (!nova) {
    const data = JSON.parse(readFileSync(new URL('./nova-options.json', import.meta.url), 'utf8')) as NovaOptions;
    nova = {
      sections: new Map(Object.entries(data.sections).map(([s, names]) => [s, new Set(names)])),
      aliases: new Map(Object.entries(data.aliases)),
      historical: new Set(data.historical),
    };
  }
  return nova;
}

export function isPortholeSection(section: string): section is SectionName {
  return Object.hasOwn(OPTIONS, section);
}

/**
 * The Porthole option a deprecated Nova name stands for (`[DEFAULT] novncproxy_port` is
 * `[vnc] novncproxy_port`), as Nova still reads it.
 */
export function novaAlias(section: string, name: string): { section: SectionName; name: string } | undefined {
  const target = novaNames().aliases.get(`${section}.${name}`);
  if (!target) return undefined;
  const dot = target.indexOf('.');
  const s = target.slice(0, dot);
  const n = target.slice(dot + 1);
  return isPortholeSection(s) && optionNames(s).includes(n) ? { section: s, name: n } : undefined;
}

/**
 * Why `[section] name` is suspicious, or undefined when it is fine: it is Porthole's or Nova's, or
 * its section is not one Porthole reads (a section unknown to both is `unknownSection`'s).
 */
export function unknownOption(section: string, name: string): string | undefined {
  if (!isPortholeSection(section)) return undefined;
  const own = optionNames(section);
  if (own.includes(name)) return undefined;
  // [porthole] is Porthole's alone: Nova's names do not excuse a typo there
  const novas = section === 'porthole' ? undefined : novaNames().sections.get(section);
  if (novas?.has(name) || (section !== 'porthole' && novaNames().historical.has(name))) return undefined;
  const guess = closestName(name, [...own, ...(novas ?? [])]);
  return `[${section}] ${name} is not an option of [${section}]${guess ? `; did you mean ${guess}?` : ''}`;
}

/** Why a `[section]` header is suspicious (unknown to Porthole and to Nova), or undefined. */
export function unknownSection(section: string): string | undefined {
  if (isPortholeSection(section) || novaNames().sections.has(section)) return undefined;
  const guess = closestName(section, [...sections(), ...novaNames().sections.keys()]);
  return `section [${section}] is unknown${guess ? `; did you mean [${guess}]?` : ''}`;
}
