/**
 * @module log/strftime
 * `[DEFAULT] log_date_format`: the strftime(3) directives Python's `time.strftime` passes to the C
 * library, in local time and the C locale, as oslo.log's `asctime` is formatted. Directives it
 * does not know are written as they are, as glibc does.
 */

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

const pad = (n: number, width = 2, fill = '0') => String(n).padStart(width, fill);

/** The local time zone's offset from UTC as `+HHMM` (strftime's `%z`). */
function offset(d: Date): string {
  const minutes = -d.getTimezoneOffset();
  const sign = minutes < 0 ? '-' : '+';
  const a = Math.abs(minutes);
  return `${sign}${pad(Math.floor(a / 60))}${pad(a % 60)}`;
}

/** The local time zone's abbreviation (`%Z`) as Node's Intl names it: `UTC`, `EST`; `GMT+5:30` where it has no abbreviation (glibc says `IST`). */
function zoneName(d: Date): string {
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName');
  return part?.value ?? offset(d);
}

function dayOfYear(d: Date): number {
  const start = new Date(d.getFullYear(), 0, 1);
  // local midnights: a DST change shifts the difference by at most an hour, which rounding absorbs
  return Math.round((new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() - start.getTime()) / 86_400_000) + 1;
}

function directive(c: string, d: Date): string | undefined {
  switch (c) {
    case 'Y': return String(d.getFullYear());
    case 'y': return pad(d.getFullYear() % 100);
    case 'C': return pad(Math.floor(d.getFullYear() / 100));
    case 'm': return pad(d.getMonth() + 1);
    case 'd': return pad(d.getDate());
    case 'e': return pad(d.getDate(), 2, ' ');
    case 'H': return pad(d.getHours());
    case 'I': return pad(d.getHours() % 12 || 12);
    case 'M': return pad(d.getMinutes());
    case 'S': return pad(d.getSeconds());
    case 'p': return d.getHours() < 12 ? 'AM' : 'PM';
    case 'a': return DAYS[d.getDay()]!.slice(0, 3);
    case 'A': return DAYS[d.getDay()]!;
    case 'b': case 'h': return MONTHS[d.getMonth()]!.slice(0, 3);
    case 'B': return MONTHS[d.getMonth()]!;
    case 'j': return pad(dayOfYear(d), 3);
    case 'w': return String(d.getDay());
    case 'u': return String(d.getDay() || 7);
    case 'z': return offset(d);
    case 'Z': return zoneName(d);
    case 's': return String(Math.floor(d.getTime() / 1000));
    case 'F': return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    case 'T': return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    case 'R': return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    case 'D': return `${pad(d.getMonth() + 1)}/${pad(d.getDate())}/${pad(d.getFullYear() % 100)}`;
    case 'n': return '\n';
    case 't': return '\t';
    case '%': return '%';
    default: return undefined;
  }
}

/** `format` with each `%x` directive replaced by `date`'s value in local time. */
export function strftime(format: string, date: Date): string {
  let out = '';
  for (let i = 0; i < format.length; i++) {
    const ch = format[i]!;
    if (ch !== '%' || i === format.length - 1) {
      out += ch;
      continue;
    }
    const c = format[++i]!;
    out += directive(c, date) ?? `%${c}`;
  }
  return out;
}
