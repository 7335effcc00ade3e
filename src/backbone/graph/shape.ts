/** Shapes with symbolic dimensions ("batch", "seq") and numpy-style broadcasting. */
export type Dim = number | string;
export type Shape = readonly Dim[];

/** The broadcast of two shapes; symbolic dims broadcast against 1 and against themselves. */
export function broadcastShapes(a: Shape, b: Shape): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === 1) out.push(db);
    else if (db === 1 || da === db) out.push(da);
    else if (typeof da === "string" || typeof db === "string") out.push(typeof da === "string" ? da : db);
    else throw new Error(`shape: cannot broadcast [${a}] with [${b}]`);
  }
  return out;
}
