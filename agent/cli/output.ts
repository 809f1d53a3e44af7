// Human tables and stable JSON for listing commands.
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function printTable(headers: string[], rows: string[][], indent = ''): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => indent + cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  process.stdout.write([line(headers), ...rows.map(line)].join('\n') + '\n');
}

/**
 * One object as `key  value` lines (status, inspect --format table). A list
 * of objects (a network's endpoints) becomes an indented table under its key.
 */
export function printRecord(record: Record<string, unknown>): void {
  const width = Math.max(0, ...Object.keys(record).map((k) => k.length)) + 2;
  for (const [key, value] of Object.entries(record)) {
    if (Array.isArray(value) && value.length > 0 && value.every(isPlainObject)) {
      process.stdout.write(`${key}:\n`);
      const columns = [...new Set(value.flatMap((item) => Object.keys(item)))];
      printTable(columns.map((c) => c.toUpperCase()), value.map((item) => columns.map((c) => cell(item[c]))), '  ');
    } else {
      process.stdout.write(`${key.padEnd(width)}${cell(value)}\n`);
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function cell(value: unknown): string {
  if (value === undefined || value === null || value === '') return '-';
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.map(cell).join(',');
  if (isPlainObject(value)) return JSON.stringify(value);
  return String(value);
}
