/**
 * A body size cap that trusts a declared Content-Length (Node's HTTP parser enforces it) and falls
 * back to hono's streaming `bodyLimit` for chunked bodies. hono's middleware always touches
 * `c.req.raw.body`, which makes @hono/node-server build a full web Request with a web stream over
 * the socket instead of its fast direct read: ~15 % of the main thread's time per /classify
 * request at saturation (node --cpu-prof, `npm run bench:efficiency`).
 */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../context.js";

export function bodySizeLimit(maxSize: number, tooLarge: () => never): MiddlewareHandler<AppEnv> {
  const streaming = bodyLimit({ maxSize, onError: tooLarge });
  return async function bodySizeLimit(c, next) {
    const declared = c.req.header("content-length");
    if (declared === undefined || c.req.header("transfer-encoding") !== undefined) return streaming(c, next);
    if (Number.parseInt(declared, 10) > maxSize) tooLarge();
    await next();
  };
}
