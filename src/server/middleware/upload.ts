/**
 * Middleware for `PUT /admin/adapters/{task}`: count outcomes, insist on raw bytes, and cap the
 * body size (declared, or counted while it streams in).
 */
import type { MiddlewareHandler } from "hono";
import { SktError } from "../../errors.js";
import type { SktMetrics } from "../../metrics.js";
import { CLIENT_CLOSED_STATUS } from "../connection.js";
import type { AppEnv } from "../context.js";
import { bodySizeLimit } from "./body-limit.js";

export const UPLOAD_MEDIA_TYPE = "application/octet-stream";

/**
 * `skt_uploads_total{outcome}`: ok (2xx), invalid (4xx: the client's file or request), error (5xx),
 * client_closed (the client went away before its upload was received or answered).
 */
export function uploadMetrics(metrics: SktMetrics): MiddlewareHandler<AppEnv> {
  return async function uploadMetrics(c, next) {
    try {
      await next();
    } finally {
      const status = c.res.status;
      const outcome =
        status === CLIENT_CLOSED_STATUS ? "client_closed" : status < 400 ? "ok" : status < 500 ? "invalid" : "error";
      metrics.uploads.inc({ outcome });
    }
  };
}

export function requireOctetStream(): MiddlewareHandler<AppEnv> {
  return async function requireOctetStream(c, next) {
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type !== UPLOAD_MEDIA_TYPE) {
      throw new SktError(
        "unsupported_media",
        "unsupported_media_type",
        `Upload the adapter's .safetensors bytes with 'Content-Type: ${UPLOAD_MEDIA_TYPE}' (got ${type ? `'${type}'` : "none"}).`,
      );
    }
    await next();
  };
}

export function uploadLimit(maxBytes: number): MiddlewareHandler<AppEnv> {
  return bodySizeLimit(maxBytes, () => {
    throw new SktError(
      "too_large",
      "upload_too_large",
      `Adapter uploads are limited to ${maxBytes} bytes (SKT_MAX_UPLOAD_BYTES).`,
      { limit: maxBytes },
    );
  });
}
