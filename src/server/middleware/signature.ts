/**
 * For `PUT /admin/adapters/{task}`, after the size limit: check the upload's signature against the
 * trusted keys before the service sees it (see src/adapters/signature.ts). A refusal is 422 with
 * `signature_required`, `unknown_signing_key` or `bad_signature`, and nothing is stored. The body
 * read here is hono's cached copy, which the route handler reads again at no cost. With no trusted
 * keys and nothing required, it does nothing.
 */
import type { MiddlewareHandler } from "hono";
import { enforceSignaturePolicy, type SignaturePolicy } from "../../adapters/signature.js";
import { sha256OfBytes } from "../audit/audit-log.js";
import type { AppEnv } from "../context.js";
import { noteAudit } from "./admin-audit.js";

export function uploadSignature(policy: SignaturePolicy, maxBytes: number): MiddlewareHandler<AppEnv> {
  // No keys and nothing required: every signature would be "unknown key", which is accepted.
  if (!policy.required && policy.keys.size === 0) return async (_c, next) => next();
  return async function uploadSignature(c, next) {
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    // An empty body is the handler's error (400 empty_body); anything else must pass the policy.
    if (bytes.byteLength > 0) {
      noteAudit(c, { sha256: sha256OfBytes(bytes) });
      enforceSignaturePolicy(bytes, policy, maxBytes);
    }
    await next();
  };
}
