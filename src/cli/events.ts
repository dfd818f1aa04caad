/**
 * @module cli/events
 * `porthole events list`: the audit trail's recent events from Porthole's own store, every
 * proxy's, through the service `GET /porthole/v1/events` answers with (`ops/audit-query.ts`):
 * the same filters, bounds and order, the same JSON objects with `--json` (one object
 * `{"events": [...]}`, as the API), a table for people otherwise.
 */
import { isGatewayError } from '../errors.ts';
import { eventsText, listEvents, parseEventsQuery } from '../ops/audit-query.ts';
import { UsageError, optionString, print, type CommandRun, type ParsedArgs } from './args.ts';
import { withStores, type Stores } from './stores.ts';

/** The code of `events list`; its help is in commands.ts. */
export const eventsListCommand: CommandRun = (a, l) => withStores(l(), (s) => eventsList(a, s));

async function eventsList(a: ParsedArgs, stores: Stores): Promise<number> {
  if (a.positional.length) throw new UsageError(`unexpected argument ${a.positional[0]}`);
  let query;
  try {
    query = parseEventsQuery({
      server: optionString(a, 'server'),
      since: optionString(a, 'since'),
      until: optionString(a, 'until'),
      event: optionString(a, 'event'),
      token: optionString(a, 'token'),
      session: optionString(a, 'session'),
      limit: optionString(a, 'limit'),
      order: optionString(a, 'order'),
    });
  } catch (err) {
    // the API's 400 words, with the option's dashes
    if (isGatewayError(err) && err.status === 400) throw new UsageError(err.message.replace(/^Invalid (\w+)/, 'invalid --$1'));
    throw err;
  }
  const events = await listEvents(stores.auditEvents, query);
  print(a, { events }, eventsText(events));
  return 0;
}
