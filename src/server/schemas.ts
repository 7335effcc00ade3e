/**
 * Shared OpenAPI/zod schemas and the JSON (snake_case) views of the service's types.
 */
import { z } from "@hono/zod-openapi";
import { TASK_NAME_PATTERN, TASK_NAME_RULE } from "../adapters/spec.js";
import type { AdapterMetadata } from "../adapters/format.js";
import type { AdapterDetails, TaskInfo, TaskListing } from "../engine/service.js";

export const TASK_NAME_MESSAGE = `must be ${TASK_NAME_RULE}`;

export const TaskName = z
  .string({ error: "required" })
  .regex(TASK_NAME_PATTERN, { error: TASK_NAME_MESSAGE })
  .openapi({ example: "sst2", pattern: TASK_NAME_PATTERN.source });

export const TaskParam = z.object({
  task: TaskName.openapi({ param: { name: "task", in: "path" } }),
});

/**
 * A JSON object with any values. Stated as `additionalProperties: {}` (any value): left to the
 * generator, `z.unknown()` values come out as a bare `nullable: true`, which OpenAPI 3.0 forbids.
 */
const AnyObject = z.record(z.string(), z.unknown()).openapi({ type: "object", additionalProperties: {} });

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "not_found" }),
      message: z.string().openapi({ example: 'Unknown task "foo".' }),
      details: AnyObject.optional(),
    }),
  })
  .openapi("Error");

export function errorContent(description: string) {
  return { description, content: { "application/json": { schema: ErrorSchema } } };
}

/** `security` of a route anyone may call (explicit, so the document says it is public on purpose). */
export const NO_AUTH: Record<string, string[]>[] = [];

/**
 * Errors any operation can answer, whatever its own checks: headers too large for the HTTP server
 * (answered before routing, see serve.ts) and an unexpected failure (logged, never detailed).
 * Spread into every route's `responses`.
 */
export const COMMON_ERRORS = {
  431: errorContent("Request headers larger than the HTTP server accepts (`headers_too_large`)"),
  500: errorContent("Unexpected server error (`internal`); the details are logged, not sent"),
} as const;

export const TaskInfoSchema = z
  .object({
    task: z.string(),
    version: z.number().int(),
    variant: z.enum(["prompt", "prefix"]),
    pooling: z.boolean(),
    labels: z.array(z.string()),
    problem_type: z.enum(["single_label_classification", "multi_label_classification", "regression"]),
    prompt_text: z.string(),
    max_length: z.number().int(),
    parameters: z.number().int(),
  })
  .openapi("TaskInfo");

export type TaskInfoJson = z.infer<typeof TaskInfoSchema>;

export function taskInfoJson(t: TaskInfo): TaskInfoJson {
  return {
    task: t.task,
    version: t.version,
    variant: t.variant,
    pooling: t.pooling,
    labels: t.labels,
    problem_type: t.problemType,
    prompt_text: t.promptText,
    max_length: t.maxLength,
    parameters: t.parameters,
  };
}

// A flat object (not an allOf over TaskInfo), so the contract check's "no unlisted fields" holds for it.
export const TaskListingSchema = z
  .object({
    ...TaskInfoSchema.shape,
    label_count: z
      .number()
      .int()
      .openapi({ description: "Labels in all; `labels` lists only the first ones when `truncated`." }),
    truncated: z.boolean().openapi({
      description:
        "True when `prompt_text` (cut to 100 characters) or `labels` (at most 10, 100 characters in all) was cut; `GET /admin/adapters/{task}` has the full values.",
    }),
  })
  .openapi("TaskListing");

export function taskListingJson(t: TaskListing): z.infer<typeof TaskListingSchema> {
  return { ...taskInfoJson(t), label_count: t.labelCount, truncated: t.truncated };
}

const snake = (k: string) => k.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);

/** Adapter metadata with snake_case top-level keys (nested values, e.g. `training`, untouched). */
export function metadataJson(m: AdapterMetadata): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) out[snake(k)] = v;
  return out;
}

export const GateSummarySchema = z
  .object({
    status: z.enum(["pending", "running", "passed", "failed", "cancelled"]),
    report_url: z.string(),
  })
  .openapi("GateSummary");

export type GateSummaryJson = z.infer<typeof GateSummarySchema>;

export const AdapterDetailsSchema = z
  .object({
    task: z.string(),
    current: z.number().int().nullable().openapi({
      description: "The current version; null while every stored version is inactive (the task is not served).",
    }),
    versions: z.array(
      z.object({
        version: z.number().int(),
        current: z.boolean(),
        state: z.enum(["current", "inactive"]),
        staged: z.boolean().openapi({
          description:
            "Uploaded inactive (`activate=false` or `gate=true`) and never made current since: waiting for activation, never pruned.",
        }),
        gate: GateSummarySchema.nullable().openapi({ description: "The version's evaluation gate, if it had one." }),
        bytes: z.number().int(),
        created_at: z.string(),
        metadata: AnyObject.openapi({ description: "The adapter file's metadata (snake_case keys)." }),
      }),
    ),
  })
  .openapi("AdapterDetails");

export function adapterDetailsJson(
  d: AdapterDetails,
  gates: ReadonlyMap<number, GateSummaryJson> = new Map(),
): z.infer<typeof AdapterDetailsSchema> {
  return {
    task: d.task,
    current: d.current,
    versions: d.versions.map((v) => ({
      version: v.version,
      current: v.current,
      state: v.current ? "current" : "inactive",
      staged: v.staged,
      gate: gates.get(v.version) ?? null,
      bytes: v.bytes,
      created_at: v.createdAt,
      metadata: metadataJson(v.metadata),
    })),
  };
}
