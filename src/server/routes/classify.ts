/**
 * `POST /classify?task=NAME` — validate, hand the texts to the service with a deadline and an
 * abort signal, and render its predictions. No model logic here. `?task=a&task=b` (the parameter
 * repeated) classifies the same texts with each task (engine/multi-task.ts) and answers
 * `{"results": [...]}` in the order asked; one `task` keeps the single-task shape.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import type { ServerConfig } from "../../config.js";
import { classifyTasks } from "../../engine/multi-task.js";
import type { ClassifyResult, Prediction } from "../../engine/service.js";
import { SktError, clientClosed, deadlineExceeded } from "../../errors.js";
import type { HttpBindings } from "@hono/node-server";
import type { Context, MiddlewareHandler } from "hono";
import type { AppDeps, AppEnv } from "../context.js";
import { bodySizeLimit } from "../middleware/body-limit.js";
import { classifyMetrics } from "../middleware/classify-metrics.js";
import { COMMON_ERRORS, NO_AUTH, TaskName, errorContent } from "../schemas.js";

/**
 * Extra time the server gives the engine past the request deadline before answering 504 itself
 * (the engine's batcher rejects with kind "timeout" at the deadline; this is the backstop).
 */
export const DEADLINE_GRACE_MS = 500;

/** Raw body cap for /classify: every text and pair at the char limit, JSON-escaped (≤ 6 bytes a char). */
export function classifyBodyLimit(config: Pick<ServerConfig, "maxTexts" | "maxTextChars">): number {
  return config.maxTexts * config.maxTextChars * 2 * 6 + 64 * 1024;
}

/**
 * What every inference route runs before its handler: request metrics (under the task's label, or
 * `metricsLabel`), the body cap, and the request's deadline with its backstop.
 */
export function inferenceMiddleware(
  deps: AppDeps,
  bodyLimit: number,
  metricsLabel?: string,
): MiddlewareHandler<AppEnv>[] {
  const { service, metrics, config } = deps;
  return [
    classifyMetrics(service, metrics, metricsLabel),
    bodySizeLimit(bodyLimit, () => {
      throw new SktError("too_large", "body_too_large", "The request body is too large.");
    }),
    deadlineBackstop(config.requestTimeoutMs),
  ];
}

/**
 * Computes the request's one deadline (now + SKT_REQUEST_TIMEOUT_MS; handlers pass
 * `c.get("deadline")` to the engine) and, DEADLINE_GRACE_MS after it, aborts the engine call and
 * answers 504 `timeout` if the engine has not — or 408 when the body was still arriving: the
 * client was too slow, not the server.
 */
function deadlineBackstop(requestTimeoutMs: number): MiddlewareHandler<AppEnv> {
  return async (untyped, next) => {
    const c = untyped as Context<AppEnv & { Bindings: Partial<HttpBindings> }>;
    const deadline = Date.now() + requestTimeoutMs;
    c.set("deadline", deadline);
    let timer: NodeJS.Timeout | undefined;
    const backstop = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => {
          if (c.env?.incoming && !c.env.incoming.complete) {
            const err = bodyTimedOut(requestTimeoutMs);
            return reject(new HTTPException(408, { message: err.message, cause: err }));
          }
          const err = deadlinePassed(requestTimeoutMs);
          c.get("abort")?.abort(err);
          reject(new HTTPException(504, { message: err.message, cause: err }));
        },
        deadline + DEADLINE_GRACE_MS - Date.now(),
      );
    });
    try {
      await Promise.race([next(), backstop]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** The backstop's answer when the body was still arriving at the deadline (the client was too slow). */
export function bodyTimedOut(requestTimeoutMs: number): SktError {
  return new SktError(
    "request_timeout",
    "request_timeout",
    `The request body was not received completely within ${requestTimeoutMs} ms.`,
  );
}

/** The backstop's answer when the engine had not answered by the deadline. */
export function deadlinePassed(requestTimeoutMs: number): SktError {
  return deadlineExceeded(`The request did not finish within ${requestTimeoutMs} ms.`);
}

/** The error statuses every inference route can answer besides 400 (and its own). */
export const INFERENCE_ERRORS = {
  408: errorContent("The request body did not arrive within SKT_REQUEST_TIMEOUT_MS"),
  413: errorContent("Too many texts, a text too long, or the body too large"),
  415: errorContent("Content-Type is not application/json"),
  429: {
    ...errorContent("Queue full; retry after the Retry-After header's seconds"),
    headers: z.object({
      "Retry-After": z.string().openapi({ description: "Seconds to wait (SKT_RETRY_AFTER_S).", example: "1" }),
    }),
  },
  503: errorContent("Not ready"),
  504: errorContent("Deadline passed"),
  ...COMMON_ERRORS,
};

/** Runs `work` with a signal that aborts when the client disconnects (or the backstop timeout fires). */
export async function withClientAbort<T>(c: Context<AppEnv>, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  c.set("abort", abort);
  const client = c.req.raw.signal;
  const onClientAbort = () => abort.abort(clientClosed("The client closed the connection."));
  if (client.aborted) onClientAbort();
  else client.addEventListener("abort", onClientAbort, { once: true });
  try {
    return await work(abort.signal);
  } finally {
    client.removeEventListener("abort", onClientAbort);
  }
}

/** A text, and a list of 1…maxTexts texts, with the server's limits. */
export function textSchemas(config: ServerConfig) {
  const text = z.string().max(config.maxTextChars, {
    error: `longer than ${config.maxTextChars} characters (SKT_MAX_TEXT_CHARS)`,
  });
  const list = z
    .array(text)
    .min(1, { error: "must not be empty" })
    .max(config.maxTexts, { error: `more than ${config.maxTexts} texts (SKT_MAX_TEXTS)` });
  return { text, list };
}

export function classifySchemas(config: ServerConfig) {
  const { text, list } = textSchemas(config);
  const body = z
    .strictObject({
      text: text.optional().openapi({ description: "One text to classify.", example: "a gripping, funny film" }),
      texts: list.optional().openapi({ description: `Several texts (1-${config.maxTexts}).` }),
      text_pair: text.optional().openapi({ description: "Second segment for `text` (pair tasks)." }),
      text_pairs: list.optional().openapi({ description: "Second segments for `texts`, same length." }),
    })
    .superRefine((b, ctx) => {
      if ((b.text === undefined) === (b.texts === undefined)) {
        ctx.addIssue({
          code: "custom",
          path: [],
          message: "provide exactly one of `text` (a string) or `texts` (a list of strings)",
        });
        return;
      }
      if (b.text_pair !== undefined && b.text_pairs !== undefined) {
        ctx.addIssue({ code: "custom", path: ["text_pairs"], message: "give `text_pair` or `text_pairs`, not both" });
      } else if (b.text_pair !== undefined && b.texts !== undefined) {
        ctx.addIssue({ code: "custom", path: ["text_pair"], message: "use `text_pairs` together with `texts`" });
      } else if (b.text_pairs !== undefined && b.text !== undefined) {
        ctx.addIssue({ code: "custom", path: ["text_pairs"], message: "use `text_pair` together with `text`" });
      } else if (b.text_pairs !== undefined && b.texts !== undefined && b.text_pairs.length !== b.texts.length) {
        ctx.addIssue({
          code: "custom",
          path: ["text_pairs"],
          message: `must have the same length as \`texts\` (${b.texts.length}), got ${b.text_pairs.length}`,
        });
      }
    })
    .openapi("ClassifyRequest");
  return { body };
}

export const PredictionSchema = z
  .object({
    label: z.string().optional().openapi({ description: "Classification: the top label." }),
    score: z.number().optional().openapi({ description: "Classification: the top label's probability." }),
    scores: z
      .record(z.string(), z.number())
      .optional()
      .openapi({ description: "Classification: every label's probability." }),
    value: z.number().optional().openapi({ description: "Regression: the predicted value." }),
    tokens: z.number().int().openapi({ description: "Text tokens actually used." }),
    truncated: z.boolean().openapi({ description: "True when the input was cut to the adapter's max length." }),
  })
  .openapi("Prediction");

export const ClassifyResponseSchema = z
  .object({
    task: z.string(),
    adapter_version: z.number().int(),
    predictions: z.array(PredictionSchema),
  })
  .openapi("ClassifyResponse");

export const MultiClassifyResponseSchema = z
  .object({
    results: z
      .array(ClassifyResponseSchema)
      .openapi({ description: "One entry per `task` parameter, in the order they were given." }),
  })
  .openapi("MultiClassifyResponse");

/**
 * Either shape, stated as `oneOf` (disjoint: `task` vs `results`); the generator would state a zod
 * union as `anyOf`. Responses are built by `resultJson`, so the custom type checks nothing at runtime.
 */
const ClassifyAnswerSchema = z
  .custom<z.infer<typeof ClassifyResponseSchema> | z.infer<typeof MultiClassifyResponseSchema>>(() => true)
  .openapi("ClassifyAnswer", {
    type: "object",
    oneOf: [{ $ref: "#/components/schemas/ClassifyResponse" }, { $ref: "#/components/schemas/MultiClassifyResponse" }],
  });

/** The `task` query parameter: one name, or the parameter repeated (hono hands a repeat as a list). */
const TaskList = z
  .preprocess((v) => (typeof v === "string" ? [v] : v), z.array(TaskName, { error: "required" }).min(1))
  .openapi({
    param: { name: "task", in: "query", style: "form", explode: true },
    description:
      "The task to classify with; repeat the parameter (`?task=a&task=b`) to classify the same texts with several tasks in one call.",
  });

export function resultJson(r: ClassifyResult): z.infer<typeof ClassifyResponseSchema> {
  return { task: r.task, adapter_version: r.adapterVersion, predictions: r.predictions.map(predictionJson) };
}

/** Over the limit or a task named twice: the call is well-formed but not one the server runs (422). */
function checkTaskList(tasks: string[], limit: number): void {
  if (tasks.length > limit)
    throw new SktError(
      "unprocessable",
      "too_many_tasks",
      `${tasks.length} tasks named; one call may name at most ${limit} (SKT_MAX_TASKS_PER_CALL)`,
      { limit },
    );
  const seen = new Set<string>();
  for (const task of tasks) {
    if (seen.has(task))
      throw new SktError(
        "unprocessable",
        "duplicate_task",
        `task "${task}" is named more than once; name each task once`,
        {
          task,
        },
      );
    seen.add(task);
  }
}

/** A /classify body as validated. */
export interface ClassifyBody {
  text?: string;
  texts?: string[];
  text_pair?: string;
  text_pairs?: string[];
}

/** The texts (and second segments) a validated body asks to classify. */
export function classifyInputs(b: ClassifyBody): { texts: string[]; pairs?: string[] } {
  const texts = b.texts ?? [b.text!];
  const pairs = b.text_pairs ?? (b.text_pair !== undefined ? [b.text_pair] : undefined);
  return { texts, ...(pairs ? { pairs } : {}) };
}

export function predictionJson(p: Prediction): z.infer<typeof PredictionSchema> {
  const out: z.infer<typeof PredictionSchema> = { tokens: p.tokens, truncated: p.truncated };
  if (p.label !== undefined) out.label = p.label;
  if (p.score !== undefined) out.score = p.score;
  if (p.scores !== undefined) out.scores = p.scores;
  if (p.value !== undefined) out.value = p.value;
  // Keep a stable key order in the JSON: label, score, scores, value, tokens, truncated.
  const { tokens, truncated, ...rest } = out;
  return { ...rest, tokens, truncated };
}

export function registerClassifyRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const { service, config } = deps;
  const { body } = classifySchemas(config);
  // Referenced only from ClassifyAnswer's oneOf, so registered by name here.
  app.openAPIRegistry.register("ClassifyResponse", ClassifyResponseSchema);
  app.openAPIRegistry.register("MultiClassifyResponse", MultiClassifyResponseSchema);

  const route = createRoute({
    method: "post",
    path: "/classify",
    operationId: "classifyTexts",
    security: NO_AUTH,
    tags: ["inference"],
    summary: "Classify one or more texts with one or several tasks' current adapters",
    description:
      `Send \`text\` or \`texts\` (at most ${config.maxTexts}, each at most ${config.maxTextChars} characters); ` +
      "pair tasks also take `text_pair`/`text_pairs`. Inputs longer than the adapter's max length are " +
      "truncated and flagged with `truncated: true`. With the `task` parameter repeated " +
      `(at most ${config.maxTasksPerCall} distinct tasks) the answer is \`{"results": [...]}\`, one entry per task in ` +
      "the order given; an unknown task fails the whole call (404) before anything runs.",
    middleware: inferenceMiddleware(deps, classifyBodyLimit(config)),
    request: {
      query: z.object({ task: TaskList }),
      body: { required: true, content: { "application/json": { schema: body } } },
    },
    responses: {
      200: {
        description:
          "Predictions, one per text (`ClassifyResponse`); for a repeated `task`, one such entry per task under `results` (`MultiClassifyResponse`)",
        content: {
          "application/json": {
            schema: ClassifyAnswerSchema,
          },
        },
      },
      400: errorContent("Invalid body, task name or malformed JSON"),
      404: errorContent("Unknown task (for several tasks: the first unknown one, named in the message)"),
      409: errorContent(
        "The task's current adapter is invalid on this server (`adapter_invalid`): an admin must upload a new version or roll back; retrying does not help",
      ),
      422: errorContent(
        "The task's stored adapter failed validation when it was loaded, more tasks than SKT_MAX_TASKS_PER_CALL (`too_many_tasks`), or a task named twice (`duplicate_task`)",
      ),
      507: errorContent("Reading the task's adapter from disk failed"),
      ...INFERENCE_ERRORS,
    },
  });

  app.openapi(route, async (c) => {
    const { task: tasks } = c.req.valid("query");
    checkTaskList(tasks, config.maxTasksPerCall);
    const work = { ...classifyInputs(c.req.valid("json")), deadline: c.get("deadline") };

    if (tasks.length === 1) {
      const result = await withClientAbort(c, (signal) => service.classify({ ...work, task: tasks[0], signal }));
      return c.json(resultJson(result), 200);
    }
    const results = await withClientAbort(c, (signal) => classifyTasks(service, { ...work, tasks, signal }));
    return c.json({ results: results.map(resultJson) }, 200);
  });
}
