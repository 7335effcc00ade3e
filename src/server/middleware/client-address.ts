/**
 * The client's address as the socket reports it (@hono/node-server's conninfo). Forwarded headers
 * are deliberately not trusted: anyone can send them, and the failed-attempt limit keys on this.
 * Behind a proxy every client shares the proxy's address (see SECURITY.md).
 */
import type { Context } from "hono";
import { getConnInfo } from "@hono/node-server/conninfo";

export function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown"; // not served by node (e.g. app.request() in tests without an env)
  }
}
