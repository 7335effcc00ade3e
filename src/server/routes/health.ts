/** `GET /healthz` (liveness), `GET /readyz` (readiness), `GET /metrics` (Prometheus text). */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { DEVICE_SETTINGS, DEVICES } from "../../backbone/device.js";
import { SktError } from "../../errors.js";
import type { AppDeps, AppEnv } from "../context.js";
import { COMMON_ERRORS, NO_AUTH, errorContent } from "../schemas.js";

export function registerHealthRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const { service, metrics } = deps;

  const healthz = createRoute({
    method: "get",
    path: "/healthz",
    operationId: "getHealth",
    security: NO_AUTH,
    tags: ["operations"],
    summary: "Liveness: 200 while the process is up",
    responses: {
      200: {
        description: "Alive",
        content: { "application/json": { schema: z.object({ status: z.literal("ok") }) } },
      },
      ...COMMON_ERRORS,
    },
  });
  app.openapi(healthz, (c) => c.json({ status: "ok" as const }, 200));

  const readyz = createRoute({
    method: "get",
    path: "/readyz",
    operationId: "getReadiness",
    security: NO_AUTH,
    tags: ["operations"],
    summary: "Readiness: 200 once the backbone is loaded and the worker is alive",
    responses: {
      200: {
        description: "Ready",
        content: {
          "application/json": {
            schema: z.object({
              status: z.literal("ready"),
              device: z
                .object({
                  requested: z.enum(DEVICE_SETTINGS).openapi({ description: "The SKT_DEVICE setting" }),
                  device: z.enum(DEVICES).openapi({ description: "Where the backbone runs" }),
                  adapter: z
                    .string()
                    .nullable()
                    .openapi({ description: "The GPU adapter's name (WebGPU), null when none or unknown" }),
                  reason: z.string().openapi({ description: "Why this device was chosen" }),
                })
                .nullable(),
              store: z
                .object({
                  backend: z
                    .enum(["filesystem", "postgres"])
                    .openapi({ description: "SKT_STORE: filesystem (default) or postgres" }),
                  state: z.enum(["ok", "degraded"]).openapi({
                    description:
                      "degraded: the adapter database is unreachable; adapters this replica holds are still served, uploads, rollbacks and deletes answer 503 `store_unavailable` until it is back",
                  }),
                  reason: z.string().nullable().openapi({ description: "Why the store is degraded (null when ok)" }),
                })
                .nullable()
                .openapi({ description: "The adapter store; null until the engine has loaded" }),
            }),
          },
        },
      },
      503: errorContent("Not ready (`not_ready`)"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(readyz, (c) => {
    if (!service.isReady()) {
      throw new SktError("not_ready", "not_ready", "The inference engine is not ready yet.");
    }
    return c.json(
      { status: "ready" as const, device: service.deviceInfo(), store: service.storeHealth?.() ?? null },
      200,
    );
  });

  const metricsRoute = createRoute({
    method: "get",
    path: "/metrics",
    operationId: "getMetrics",
    security: NO_AUTH,
    tags: ["operations"],
    summary: "Prometheus metrics (text exposition format)",
    responses: {
      200: { description: "Metrics", content: { "text/plain": { schema: z.string() } } },
      ...COMMON_ERRORS,
    },
  });
  app.openapi(metricsRoute, async (c) => {
    const text = await metrics.registry.metrics();
    return c.text(text, 200, { "Content-Type": metrics.registry.contentType });
  });
}
