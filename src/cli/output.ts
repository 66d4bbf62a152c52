// `-o table|wide|json|yaml|name`: data goes to stdout in one of these shapes; progress and
// warnings never do (they go to stderr), so `berth … -o json | jq` always reads clean JSON.
import { usageError } from './errors.ts';

export const FORMATS = ['table', 'wide', 'json', 'yaml', 'name'] as const;
export type Format = (typeof FORMATS)[number];

export function formatOf(value: string | undefined, fallback: Format = 'table'): Format {
  if (value === undefined) return fallback;
  if ((FORMATS as readonly string[]).includes(value)) return value as Format;
  throw usageError(`-o ${value} is not an output format; use one of ${FORMATS.join(', ')}`);
}

export interface Column<T> {
  header: string;
  value: (item: T) => string;
  /** Shown only with -o wide. */
  wide?: boolean;
}

export interface View<T> {
  /** `kind/name` for -o name. */
  name: (item: T) => string;
  columns: Column<T>[];
  /** The full object for json/yaml (broker mode: the OSB JSON plus the name and ids the CLI knows it by). */
  full: (item: T) => unknown;
}

/** Plain kubectl-style columns: left-aligned, three spaces apart, no borders. */
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('   ').trimEnd()).join('\n') + '\n';
}

export async function render<T>(items: T[], view: View<T>, format: Format, opts: { single?: boolean; empty?: string } = {}): Promise<string> {
  switch (format) {
    case 'json':
      return `${JSON.stringify(opts.single ? view.full(items[0]!) : items.map(view.full), null, 2)}\n`;
    case 'yaml': {
      const { stringify } = await import('yaml');
      return stringify(opts.single ? view.full(items[0]!) : items.map(view.full));
    }
    case 'name':
      return items.map((i) => `${view.name(i)}\n`).join('');
    default: {
      if (items.length === 0) return '';
      const columns = view.columns.filter((c) => format === 'wide' || !c.wide);
      return table([columns.map((c) => c.header), ...items.map((item) => columns.map((c) => oneLine(c.value(item))))]);
    }
  }
}

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ');

/** kubectl's AGE: 45s, 12m, 3h, 5d. */
export function age(since: string | undefined, now = Date.now()): string {
  if (!since) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
