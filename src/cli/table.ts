/** Plain-text tables for the terminal: left-aligned columns, two spaces apart, long cells cut. */

const MAX_CELL = 60;

function cell(value: unknown): string {
  const text =
    value === undefined || value === null
      ? "-"
      : typeof value === "string"
        ? value
        : typeof value === "number" || typeof value === "boolean" || typeof value === "bigint"
          ? String(value)
          : JSON.stringify(value);
  const s = text.replace(/\s+/g, " ");
  return s.length > MAX_CELL ? `${s.slice(0, MAX_CELL - 1)}…` : s;
}

export function renderTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [headers.map(cell), ...rows.map((r) => r.map(cell))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ")).join("\n");
}
