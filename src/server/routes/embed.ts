/**
 * `POST /embed` — the backbone's own sentence vector for each text, with no adapter: for a Hugging
 * Face model the mean of the last hidden state over every position the tokenizer produced (special
 * tokens included), for USE-lite its sentence_embedding. Same limits, deadline and metrics as
 * /classify (metrics under task="__embed__").
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppDeps, AppEnv } from "../context.js";
import { NO_AUTH, errorContent } from "../schemas.js";
import { INFERENCE_ERRORS, inferenceMiddleware, textSchemas, withClientAbort } from "./classify.js";
import type { ServerConfig } from "../../config.js";

/** The `task` label /embed's requests are counted under (task names cannot start with "_"). */
export const EMBED_METRICS_LABEL = "__embed__";

/** Raw body cap for /embed: every text at the char limit, JSON-escaped (≤ 6 bytes a char). */
function embedBodyLimit(config: ServerConfig): number {
  return config.maxTexts * config.maxTextChars * 6 + 64 * 1024;
}

export const EmbedResponseSchema = z
  .object({
    model: z.string().openapi({ description: 'The backbone: "use-lite" or the model folder\'s name.' }),
    embeddings: z.array(z.array(z.number())).openapi({ description: "One vector per text, in request order." }),
    tokens: z.array(z.number().int()).openapi({
      description: "Tokens each text ran with (special tokens included, after truncation to the model's positions).",
    }),
  })
  .openapi("EmbedResponse");

export function registerEmbedRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const { service, config } = deps;
  const { text, list } = textSchemas(config);
  const body = z
    .strictObject({
      text: text.optional().openapi({ description: "One text to embed.", example: "a gripping, funny film" }),
      texts: list.optional().openapi({ description: `Several texts (1-${config.maxTexts}).` }),
      normalize: z.boolean().optional().openapi({ description: "Scale each vector to unit length (default false)." }),
    })
    .superRefine((b, ctx) => {
      if ((b.text === undefined) === (b.texts === undefined))
        ctx.addIssue({
          code: "custom",
          path: [],
          message: "provide exactly one of `text` (a string) or `texts` (a list of strings)",
        });
    })
    .openapi("EmbedRequest");

  const route = createRoute({
    method: "post",
    path: "/embed",
    operationId: "embedTexts",
    security: NO_AUTH,
    tags: ["inference"],
    summary: "The backbone's sentence vector of one or more texts",
    description:
      `Send \`text\` or \`texts\` (at most ${config.maxTexts}, each at most ${config.maxTextChars} characters). ` +
      "Hugging Face backbones return the mean of the last hidden state over all positions the tokenizer produced, " +
      "special tokens included; USE-lite returns its own sentence embedding. Not normalised unless `normalize` is true.",
    middleware: inferenceMiddleware(deps, embedBodyLimit(config), EMBED_METRICS_LABEL),
    request: { body: { required: true, content: { "application/json": { schema: body } } } },
    responses: {
      200: { description: "One vector per text", content: { "application/json": { schema: EmbedResponseSchema } } },
      400: errorContent("Invalid body or malformed JSON"),
      ...INFERENCE_ERRORS,
    },
  });

  app.openapi(route, async (c) => {
    const b = c.req.valid("json");
    const texts = b.texts ?? [b.text!];
    const result = await withClientAbort(c, (signal) =>
      service.embed({ texts, normalize: b.normalize ?? false, deadline: c.get("deadline"), signal }),
    );
    return c.json(
      { model: result.model, embeddings: result.embeddings.map((v) => Array.from(v)), tokens: result.tokens },
      200,
    );
  });
}
