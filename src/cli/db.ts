/**
 * @module cli/db
 * `porthole db migrate`: creates or upgrades Porthole's own tables; a Nova database is never
 * migrated, and the output says so.
 */
import { print, type CommandRun, type ParsedArgs } from './args.ts';
import { withStores, type Stores } from './stores.ts';

/** The code of `db migrate`; its help is in commands.ts. */
export const dbMigrateCommand: CommandRun = (a, l) => withStores(l(), async (s) => dbMigrate(a, s), false);

async function dbMigrate(a: ParsedArgs, stores: Stores): Promise<number> {
  const applied = await stores.migrate();
  // a Nova database is never migrated; Porthole's own tables may be elsewhere ([porthole] connection)
  const targets = [...(stores.nova ? [] : [stores.description]), ...(stores.ownDescription && stores.ownDescription !== stores.description ? [stores.ownDescription] : [])];
  const novaNote = stores.nova ? `${stores.description} is a Nova database: Porthole does not migrate it${stores.ownDescription ? '' : '; [porthole] connection is not set, so there are no tables of Porthole\'s own (the inventory is off)'}` : '';
  const text = targets.length === 0 ? novaNote : `${applied.length ? `applied ${applied.join(', ')} to ${targets.join(' and ')}` : `${targets.join(' and ')} ${targets.length > 1 ? 'are' : 'is'} up to date`}${novaNote ? `\n${novaNote}` : ''}`;
  const extra = stores.nova || (stores.ownDescription !== null && stores.ownDescription !== stores.description) ? { own: stores.ownDescription, nova: stores.nova } : {};
  print(a, { database: stores.description, applied, ...extra }, text);
  return 0;
}
