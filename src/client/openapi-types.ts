/**
 * Generated from the served OpenAPI document (default settings) by `npm run client:types`
 * (scripts/lib/client-types.ts). Do not edit: change the route definitions in src/server/ and
 * regenerate; test/client/openapi-types.test.ts fails while this file and the document differ.
 */
export interface paths {
  "/healthz": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Liveness: 200 while the process is up */
    get: operations["getHealth"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/readyz": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Readiness: 200 once the backbone is loaded and the worker is alive */
    get: operations["getReadiness"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/metrics": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Prometheus metrics (text exposition format) */
    get: operations["getMetrics"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/tasks": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * List the tasks this server can classify (paginated, in name order)
     * @description Long fields are cut (`truncated`); the admin view `GET /admin/adapters/{task}` has full values.
     */
    get: operations["listTasks"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/classify": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Classify one or more texts with one or several tasks' current adapters
     * @description Send `text` or `texts` (at most 64, each at most 10000 characters); pair tasks also take `text_pair`/`text_pairs`. Inputs longer than the adapter's max length are truncated and flagged with `truncated: true`. With the `task` parameter repeated (at most 8 distinct tasks) the answer is `{"results": [...]}`, one entry per task in the order given; an unknown task fails the whole call (404) before anything runs.
     */
    post: operations["classifyTexts"];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/embed": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * The backbone's sentence vector of one or more texts
     * @description Send `text` or `texts` (at most 64, each at most 10000 characters). Hugging Face backbones return the mean of the last hidden state over all positions the tokenizer produced, special tokens included; USE-lite returns its own sentence embedding. Not normalised unless `normalize` is true.
     */
    post: operations["embedTexts"];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/admin/adapters": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Every task with its current adapter version (paginated, in name order) */
    get: operations["listAdapters"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/admin/adapters/{task}": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** A task's versions and their metadata */
    get: operations["getAdapter"];
    /**
     * Upload a new adapter version (current at once, inactive, or behind the evaluation gate)
     * @description The body is the adapter's `.safetensors` file, sent as `application/octet-stream` (at most 16777216 bytes). It is validated, prepared, probed and written atomically, then swapped in; a failed upload changes nothing. `activate=false` runs the same checks and stores the version inactive (201, `active: false`); `gate=true` stores it inactive, answers 202 and evaluates it in the background on the task's evaluation set: it becomes current only if its score is not below the current version's minus `tolerance`. A file whose metadata names another task is refused (422 `task_mismatch`) unless `?rename=true`, which stores it under `{task}` with its metadata rewritten.
     */
    put: operations["uploadAdapter"];
    post?: never;
    /** Stop serving a task and remove its adapters */
    delete: operations["deleteAdapter"];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/admin/adapters/{task}/stats": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * What a task's classifier has been answering: rows per label, low-confidence share, drift
     * @description The same numbers as `skt_predictions_total`, `skt_low_confidence_share` and `skt_label_drift` in /metrics, for this process since the current version's first classified row. Regression tasks have no rows here.
     */
    get: operations["getAdapterStats"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/admin/adapters/{task}/rollback": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Make an earlier version current again (default: the one before the current) */
    post: operations["rollbackAdapter"];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/admin/adapters/{task}/activate": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Make any stored version current (earlier or later than the current one)
     * @description Prepared and probed like a rollback before the current-version pointer moves; a failure changes nothing.
     */
    post: operations["activateAdapter"];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/admin/adapters/{task}/eval-set": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The task's evaluation set (its description, not its rows) */
    get: operations["getEvalSet"];
    /**
     * Store the task's labelled evaluation set (for uploads with gate=true)
     * @description The trainer's formats: TSV (GLUE layout), CSV or JSONL, chosen by Content-Type. Labels must be the adapter's label names (or, for single-label tasks, indices 0..n-1 into them). Replaces the task's previous set atomically. At most 4194304 bytes and 5000 rows.
     */
    put: operations["putEvalSet"];
    post?: never;
    /** Remove the task's evaluation set (gates already queued fail: they read it when they start) */
    delete: operations["deleteEvalSet"];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/admin/adapters/{task}/versions/{version}/report": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Progress and result of a version's evaluation gate */
    get: operations["getGateReport"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/admin/adapters/{task}/versions/{version}": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    post?: never;
    /** Remove one stored version that is not current (its running gate is cancelled) */
    delete: operations["deleteAdapterVersion"];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/admin/adapters/{task}/traffic": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** A task's canary/shadow split and what each version answered since it was set */
    get: operations["getTraffic"];
    /**
     * Set a task's canary (a share of its rows) and/or shadow (scores every row, never answers); {} clears
     * @description The body replaces the whole split: a field left out is cleared. Each version named must be stored and not current; it is prepared and probed before the split applies. Counts restart. The split is saved next to the store and survives a restart; it loses a version that becomes current (rollback/activate) or is deleted, and goes with its task.
     */
    put: operations["setTraffic"];
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/admin/audit": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * Read the admin audit log (newest entries, oldest first)
     * @description Returns the newest `limit` entries (default 100, at most 1000) that match, ordered oldest first (the newest is last); `truncated` says that older matching entries were left out (narrow with `since`). Successful reads are not audited; mutations and every refused or failed request are.
     */
    get: operations["listAuditEntries"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
}
export type webhooks = Record<string, never>;
export interface components {
  schemas: {
    ClassifyResponse: {
      task: string;
      adapter_version: number;
      predictions: components["schemas"]["Prediction"][];
    };
    Prediction: {
      /** @description Classification: the top label. */
      label?: string;
      /** @description Classification: the top label's probability. */
      score?: number;
      /** @description Classification: every label's probability. */
      scores?: {
        [key: string]: number;
      };
      /** @description Regression: the predicted value. */
      value?: number;
      /** @description Text tokens actually used. */
      tokens: number;
      /** @description True when the input was cut to the adapter's max length. */
      truncated: boolean;
    };
    MultiClassifyResponse: {
      /** @description One entry per `task` parameter, in the order they were given. */
      results: components["schemas"]["ClassifyResponse"][];
    };
    Error: {
      error: {
        /** @example not_found */
        code: string;
        /** @example Unknown task "foo". */
        message: string;
        details?: {
          [key: string]: unknown;
        };
      };
    };
    TaskListing: {
      task: string;
      version: number;
      /** @enum {string} */
      variant: "prompt" | "prefix";
      pooling: boolean;
      labels: string[];
      /** @enum {string} */
      problem_type: "single_label_classification" | "multi_label_classification" | "regression";
      prompt_text: string;
      max_length: number;
      parameters: number;
      /** @description Labels in all; `labels` lists only the first ones when `truncated`. */
      label_count: number;
      /** @description True when `prompt_text` (cut to 100 characters) or `labels` (at most 10, 100 characters in all) was cut; `GET /admin/adapters/{task}` has the full values. */
      truncated: boolean;
    };
    ClassifyAnswer: components["schemas"]["ClassifyResponse"] | components["schemas"]["MultiClassifyResponse"];
    ClassifyRequest: {
      /**
       * @description One text to classify.
       * @example a gripping, funny film
       */
      text?: string;
      /** @description Several texts (1-64). */
      texts?: string[];
      /** @description Second segment for `text` (pair tasks). */
      text_pair?: string;
      /** @description Second segments for `texts`, same length. */
      text_pairs?: string[];
    };
    EmbedResponse: {
      /** @description The backbone: "use-lite" or the model folder's name. */
      model: string;
      /** @description One vector per text, in request order. */
      embeddings: number[][];
      /** @description Tokens each text ran with (special tokens included, after truncation to the model's positions). */
      tokens: number[];
    };
    EmbedRequest: {
      /**
       * @description One text to embed.
       * @example a gripping, funny film
       */
      text?: string;
      /** @description Several texts (1-64). */
      texts?: string[];
      /** @description Scale each vector to unit length (default false). */
      normalize?: boolean;
    };
    AdapterDetails: {
      task: string;
      /** @description The current version; null while every stored version is inactive (the task is not served). */
      current: number | null;
      versions: {
        version: number;
        current: boolean;
        /** @enum {string} */
        state: "current" | "inactive";
        /** @description Uploaded inactive (`activate=false` or `gate=true`) and never made current since: waiting for activation, never pruned. */
        staged: boolean;
        gate: components["schemas"]["GateSummary"];
        bytes: number;
        created_at: string;
        /** @description The adapter file's metadata (snake_case keys). */
        metadata: {
          [key: string]: unknown;
        };
      }[];
    };
    /** @description The version's evaluation gate, if it had one. */
    GateSummary: {
      /** @enum {string} */
      status: "pending" | "running" | "passed" | "failed" | "cancelled";
      report_url: string;
    } | null;
    TaskStats: {
      task: string;
      /** @description False for a task past the per-task metrics label cap (200): it is counted under `__other__` and no window is kept. */
      tracked: boolean;
      /** @description The version the counts are for (null before its first classified row). */
      adapter_version: number | null;
      /** @description SKT_LOW_CONFIDENCE. */
      low_confidence_threshold: number;
      total: {
        rows: number;
        /** @description Rows by top label since this version's first row. */
        labels: {
          [key: string]: number;
        };
      };
      window: {
        /** @description SKT_QUALITY_WINDOW. */
        size: number;
        /** @description Rows in the window now (at most `size`). */
        rows: number;
        labels: {
          [key: string]: number;
        };
        low_confidence_share: number | null;
        /** @description Total-variation distance between the window's label distribution and `training_distribution` (0 = same, 1 = disjoint); null when the adapter file records no training distribution or no row was classified yet. */
        drift: number | null;
      };
      /** @description The adapter's `training.label_distribution` (single-label tasks trained by this version's trainer). */
      training_distribution: {
        [key: string]: number;
      } | null;
    };
    UploadResult: {
      task: string;
      version: number;
      /** @enum {string} */
      variant: "prompt" | "prefix";
      pooling: boolean;
      labels: string[];
      /** @enum {string} */
      problem_type: "single_label_classification" | "multi_label_classification" | "regression";
      prompt_text: string;
      max_length: number;
      parameters: number;
      /** @description sha256 (hex) of the file as stored (after a rename: the rewritten file). */
      sha256: string;
      /** @description With `?rename=true`: the task the uploaded file's metadata named; otherwise null. */
      renamed_from: string | null;
      /** @description True when a rename removed the file's signature (it covered the old task name and could not verify again). */
      signature_dropped: boolean;
      /** @description Whether the uploaded version is now current. */
      active: boolean;
      /** @description The task's current version after the upload (null: none yet). */
      current: number | null;
    };
    GatedUpload: {
      task: string;
      version: number;
      /** @enum {string} */
      variant: "prompt" | "prefix";
      pooling: boolean;
      labels: string[];
      /** @enum {string} */
      problem_type: "single_label_classification" | "multi_label_classification" | "regression";
      prompt_text: string;
      max_length: number;
      parameters: number;
      /** @description sha256 (hex) of the file as stored (after a rename: the rewritten file). */
      sha256: string;
      /** @description With `?rename=true`: the task the uploaded file's metadata named; otherwise null. */
      renamed_from: string | null;
      /** @description True when a rename removed the file's signature (it covered the old task name and could not verify again). */
      signature_dropped: boolean;
      /** @description Whether the uploaded version is now current. */
      active: boolean;
      /** @description The task's current version after the upload (null: none yet). */
      current: number | null;
      gate: components["schemas"]["GateSummary"];
    };
    TaskInfo: {
      task: string;
      version: number;
      /** @enum {string} */
      variant: "prompt" | "prefix";
      pooling: boolean;
      labels: string[];
      /** @enum {string} */
      problem_type: "single_label_classification" | "multi_label_classification" | "regression";
      prompt_text: string;
      max_length: number;
      parameters: number;
    };
    EvalSet: {
      /** @enum {string} */
      format: "tsv" | "csv" | "jsonl";
      rows: number;
      sha256: string;
      created_at: string;
      /** @enum {string} */
      problem_type: "single_label_classification" | "multi_label_classification" | "regression";
      /** @description The adapter's labels the set was checked against. */
      labels: string[];
      /**
       * @description "position": the file labelled rows by index into `labels` (GLUE-style 0/1).
       * @enum {string}
       */
      label_mapping: "names" | "position";
      text_pair: boolean;
    };
    GateReport: {
      task: string;
      version: number;
      /** @enum {string} */
      status: "pending" | "running" | "passed" | "failed" | "cancelled";
      /** @enum {string|null} */
      metric: "accuracy" | "micro_f1" | "pearson" | null;
      tolerance: number;
      eval_set: {
        rows: number;
        sha256: string;
      } | null;
      progress: {
        done: number;
        total: number;
      };
      candidate: {
        version: number;
        score: number | null;
        metrics: {
          [key: string]: number;
        };
      } | null;
      /** @description The current version's score on the same set (null: there was no current version). */
      baseline: {
        version: number;
        score: number | null;
        metrics: {
          [key: string]: number;
        };
      } | null;
      activated: boolean;
      reason: string | null;
      requested_by: string | null;
      created_at: string;
      started_at: string | null;
      finished_at: string | null;
    };
    TrafficState: {
      task: string;
      current: number | null;
      canary: {
        version: number;
        percent: number;
      } | null;
      shadow: {
        version: number;
      } | null;
      /** @description ISO time the split was set; the counts start there. */
      since: string | null;
      /** @description Requests and rows each version answered since `since`. */
      versions: {
        version: number;
        /** @enum {string} */
        role: "current" | "canary";
        requests: number;
        rows: number;
      }[];
      shadow_counts: {
        version: number;
        /** @description Rows the shadow scored next to the current version. */
        compared: number;
        /** @description Of those, rows with the same top label. */
        agreed: number;
        /** @description agreed / compared; null before any row or for regression. */
        agreement: number | null;
        /** @description Rows not shadowed (queue full, shadow not loadable). */
        skipped: number;
      } | null;
    };
    TrafficSplitRequest: {
      canary?: {
        /** @description Stored version, not the current one. */
        version: number;
        /**
         * @description Share of the task's rows it answers, 0-100 (else 422 `invalid_percent`).
         * @example 10
         */
        percent: number;
      };
      shadow?: {
        /** @description Stored version, not the current one. */
        version: number;
      };
    };
    AuditEntry: {
      /** @description ISO time the action finished. */
      time: string;
      request_id: string | null;
      /** @description The token's name; null when no token was accepted. */
      actor: string | null;
      /** @example upload */
      action: string;
      method: string;
      path: string;
      task: string | null;
      version: number | null;
      /** @description sha256 of the uploaded file (uploads only). */
      sha256: string | null;
      status: number;
      /** @enum {string} */
      result: "ok" | "refused" | "failed";
      /** @description Error code of a non-2xx answer. */
      code: string | null;
      client: string;
    };
  };
  responses: never;
  parameters: never;
  requestBodies: never;
  headers: never;
  pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
  getHealth: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Alive */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": {
            /** @enum {string} */
            status: "ok";
          };
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  getReadiness: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Ready */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": {
            /** @enum {string} */
            status: "ready";
            device: {
              /**
               * @description The SKT_DEVICE setting
               * @enum {string}
               */
              requested: "cpu" | "webgpu" | "auto" | "cuda";
              /**
               * @description Where the backbone runs
               * @enum {string}
               */
              device: "cpu" | "webgpu" | "cuda";
              /** @description The GPU adapter's name (WebGPU), null when none or unknown */
              adapter: string | null;
              /** @description Why this device was chosen */
              reason: string;
            } | null;
            /** @description The adapter store; null until the engine has loaded */
            store: {
              /**
               * @description SKT_STORE: filesystem (default) or postgres
               * @enum {string}
               */
              backend: "filesystem" | "postgres";
              /**
               * @description degraded: the adapter database is unreachable; adapters this replica holds are still served, uploads, rollbacks and deletes answer 503 `store_unavailable` until it is back
               * @enum {string}
               */
              state: "ok" | "degraded";
              /** @description Why the store is degraded (null when ok) */
              reason: string | null;
            } | null;
          };
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready (`not_ready`) */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  getMetrics: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Metrics */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "text/plain": string;
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  listTasks: {
    parameters: {
      query?: {
        /** @description Most tasks on the page. */
        limit?: number;
        /** @description The previous page's `next_cursor`; omit for the first page. */
        cursor?: string;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description One page of served tasks */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": {
            tasks: components["schemas"]["TaskListing"][];
            /** @description Tasks served in all (every page). */
            total: number;
            /** @description Pass as `cursor` for the next page; null on the last page. */
            next_cursor: string | null;
          };
        };
      };
      /** @description Bad limit or cursor */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  classifyTexts: {
    parameters: {
      query: {
        /** @description The task to classify with; repeat the parameter (`?task=a&task=b`) to classify the same texts with several tasks in one call. */
        task: string[];
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        "application/json": components["schemas"]["ClassifyRequest"];
      };
    };
    responses: {
      /** @description Predictions, one per text (`ClassifyResponse`); for a repeated `task`, one such entry per task under `results` (`MultiClassifyResponse`) */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["ClassifyAnswer"];
        };
      };
      /** @description Invalid body, task name or malformed JSON */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unknown task (for several tasks: the first unknown one, named in the message) */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The request body did not arrive within SKT_REQUEST_TIMEOUT_MS */
      408: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The task's current adapter is invalid on this server (`adapter_invalid`): an admin must upload a new version or roll back; retrying does not help */
      409: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many texts, a text too long, or the body too large */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Content-Type is not application/json */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The task's stored adapter failed validation when it was loaded, more tasks than SKT_MAX_TASKS_PER_CALL (`too_many_tasks`), or a task named twice (`duplicate_task`) */
      422: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Queue full; retry after the Retry-After header's seconds */
      429: {
        headers: {
          /** @description Seconds to wait (SKT_RETRY_AFTER_S). */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Deadline passed */
      504: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Reading the task's adapter from disk failed */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  embedTexts: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        "application/json": components["schemas"]["EmbedRequest"];
      };
    };
    responses: {
      /** @description One vector per text */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["EmbedResponse"];
        };
      };
      /** @description Invalid body or malformed JSON */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The request body did not arrive within SKT_REQUEST_TIMEOUT_MS */
      408: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many texts, a text too long, or the body too large */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Content-Type is not application/json */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Queue full; retry after the Retry-After header's seconds */
      429: {
        headers: {
          /** @description Seconds to wait (SKT_RETRY_AFTER_S). */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Deadline passed */
      504: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  listAdapters: {
    parameters: {
      query?: {
        /** @description Most tasks on the page. */
        limit?: number;
        /** @description The previous page's `next_cursor`; omit for the first page. */
        cursor?: string;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description One page of tasks and current versions */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": {
            adapters: {
              task: string;
              version: number;
            }[];
            /** @description Tasks served in all (every page). */
            total: number;
            /** @description Pass as `cursor` for the next page; null on the last page. */
            next_cursor: string | null;
          };
        };
      };
      /** @description Bad limit or cursor, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  getAdapter: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Versions */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["AdapterDetails"];
        };
      };
      /** @description Invalid task name, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unknown task */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Reading the task's adapters from disk failed */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  uploadAdapter: {
    parameters: {
      query?: {
        /** @description false: store and prepare the version without making it current (default true). */
        activate?: "true" | "false";
        /** @description true: store inactive and make current only if it passes the evaluation gate on the task's eval set (answers 202). */
        gate?: "true" | "false";
        /** @description With gate=true: how far below the current version's score the new version may score and still pass (default 0). */
        tolerance?: number;
        /** @description `true`: accept a file whose metadata names another task and store it under `{task}` (its metadata rewritten; a signature is dropped, or the upload refused when SKT_REQUIRE_SIGNATURE=true). */
        rename?: "true" | "false";
      };
      header?: never;
      path: {
        task: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        "application/octet-stream": string;
      };
    };
    responses: {
      /** @description The stored version (current, `active: true`, or with `activate=false` inactive) and the stored file's sha256 */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["UploadResult"];
        };
      };
      /** @description Stored inactive; its evaluation gate is queued (follow `report_url`) */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["GatedUpload"];
        };
      };
      /** @description Invalid task name, empty body, bad query (a `rename` value other than true/false, `gate=true` with `activate=true`, `tolerance` without the gate), or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description `gate=true` but the task has no evaluation set (`no_eval_set`), or the task already holds as many inactive versions waiting for activation as its version limit (`too_many_staged_versions`) */
      409: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Upload larger than SKT_MAX_UPLOAD_BYTES */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Content-Type is not application/octet-stream */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The file failed adapter validation (a file for another task without `?rename=true`: `task_mismatch`), its signature check (`signature_required`, `unknown_signing_key`, `bad_signature`), or a rename that would break a required signature (`rename_breaks_signature`) */
      422: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The disk refused the write */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  deleteAdapter: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Deleted */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      /** @description Invalid task name, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unknown task */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The disk refused to remove the files */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  getAdapterStats: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Per-task quality statistics */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["TaskStats"];
        };
      };
      /** @description Invalid task name, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unknown task */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  rollbackAdapter: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
      };
      cookie?: never;
    };
    requestBody?: {
      content: {
        "application/json": {
          /** @description Version to restore. */
          version?: number;
        };
      };
    };
    responses: {
      /** @description The now-current version */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["TaskInfo"];
        };
      };
      /** @description Invalid task name or body, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unknown task or version */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description No earlier version to roll back to (`no_previous_version`), or the version named is already current (`version_is_current`) */
      409: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description A body whose Content-Type is not application/json */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The version to restore failed validation when it was loaded */
      422: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Reading the version or writing the current-version pointer failed */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  activateAdapter: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        "application/json": {
          /** @description Stored version to make current. */
          version: number;
        };
      };
    };
    responses: {
      /** @description The now-current version */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["TaskInfo"];
        };
      };
      /** @description Invalid task name or body (`version` is required), or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unknown task or version */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The version is already current (`version_is_current`) */
      409: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description A body whose Content-Type is not application/json */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The version failed validation when it was loaded */
      422: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Reading the version or writing the current-version pointer failed */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  getEvalSet: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The stored set */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["EvalSet"];
        };
      };
      /** @description Invalid task name, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The task has no evaluation set (`eval_set_not_found`) */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Reading the stored set failed */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  putEvalSet: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        "text/tab-separated-values": string;
        "text/csv": string;
        "application/jsonl": string;
        "application/x-ndjson": string;
      };
    };
    responses: {
      /** @description The stored set (without its rows) */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["EvalSet"];
        };
      };
      /** @description A row the trainer's reader refuses (`dataset_*`, naming the line), labels that are not the adapter's (`eval_set_unknown_label`), text pairs that do not match the task (`eval_set_pair_mismatch`), invalid UTF-8, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unknown task */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description More bytes than SKT_MAX_EVAL_SET_BYTES or rows than SKT_MAX_EVAL_SET_ROWS */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Content-Type is not text/tab-separated-values, text/csv, application/jsonl or application/x-ndjson */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The disk refused the write */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  deleteEvalSet: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Removed */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      /** @description Invalid task name, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The task has no evaluation set (`eval_set_not_found`) */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The disk refused to remove the file */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  getGateReport: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
        version: number;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The gate's report */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["GateReport"];
        };
      };
      /** @description Invalid task name or version, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The version has no gate report (`report_not_found`) */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Reading the stored report failed */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  deleteAdapterVersion: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
        version: number;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Deleted */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      /** @description Invalid task name or version, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unknown task or version */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The version is current (`version_is_current`): activate another one first */
      409: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description The disk refused to remove the file */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  getTraffic: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The split and its counts */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["TrafficState"];
        };
      };
      /** @description Invalid task name, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unknown task */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  setTraffic: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        task: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        "application/json": components["schemas"]["TrafficSplitRequest"];
      };
    };
    responses: {
      /** @description The new split */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["TrafficState"];
        };
      };
      /** @description Invalid task name or body, or an Authorization header that is not `Bearer <token>` */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unknown task, or a version that is not stored (`version_not_found`) */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description A version named is the current one (`version_is_current`) */
      409: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Content-Type is not application/json */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Percent outside 0-100 (`invalid_percent`), the same version as canary and shadow (`canary_is_shadow`), a version that takes other inputs or gives another kind of output than the current one (`incompatible_version`), or one that fails validation */
      422: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Reading a version or saving the split failed */
      507: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
  listAuditEntries: {
    parameters: {
      query?: {
        task?: string;
        since?: string;
        limit?: number;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Audit entries */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": {
            entries: components["schemas"]["AuditEntry"][];
            truncated: boolean;
          };
        };
      };
      /** @description Invalid query parameter or Authorization header */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Missing or unknown bearer token */
      401: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`) */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After) */
      429: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Request headers larger than the HTTP server accepts (`headers_too_large`) */
      431: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Unexpected server error (`internal`); the details are logged, not sent */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
      /** @description Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served) */
      503: {
        headers: {
          /** @description Seconds to wait before retrying (SKT_RETRY_AFTER_S) */
          "Retry-After": string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["Error"];
        };
      };
    };
  };
}
