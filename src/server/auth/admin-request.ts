/**
 * What an admin request is about, read from its method and path alone (the auth and audit
 * middleware run before any route has parsed parameters):
 *
 * - scope: GET/HEAD need `read`; a mutation of `/admin/adapters/{task}/traffic` needs `traffic`;
 *   every other mutation needs `write`.
 * - task: the segment after `/admin/adapters/`, if any.
 * - action: a stable name for the audit log (`upload`, `rollback`, `activate`, …; other routes get
 *   `METHOD /admin/adapters/{task}/…` with the task and numbers replaced by placeholders).
 */
import { isValidTaskName } from "../../adapters/task-name.js";
import type { Scope } from "./tokens.js";

const TASK_SEGMENT = /^\/admin\/adapters\/([^/]+)/;

export function isReadMethod(method: string): boolean {
  return method === "GET" || method === "HEAD";
}

export function requiredScope(method: string, path: string): Scope {
  if (isReadMethod(method)) return "read";
  return /^\/admin\/adapters\/[^/]+\/traffic\/?$/.test(path) ? "traffic" : "write";
}

/** The raw task segment of an `/admin/adapters/{task}…` path (not yet validated), or undefined. */
export function taskSegment(path: string): string | undefined {
  return TASK_SEGMENT.exec(path)?.[1];
}

/** The task a path names, only when it is a valid task name (so nothing odd reaches the audit log). */
export function taskOfPath(path: string): string | null {
  const seg = taskSegment(path);
  return isValidTaskName(seg) ? seg : null;
}

const NAMED_ACTIONS: Record<string, string> = {
  "GET /admin/adapters": "list",
  "GET /admin/adapters/{task}": "details",
  "PUT /admin/adapters/{task}": "upload",
  "DELETE /admin/adapters/{task}": "delete_task",
  "POST /admin/adapters/{task}/rollback": "rollback",
  "POST /admin/adapters/{task}/activate": "activate",
  "DELETE /admin/adapters/{task}/versions/{n}": "delete_version",
  "PUT /admin/adapters/{task}/eval-set": "put_eval_set",
  "DELETE /admin/adapters/{task}/eval-set": "delete_eval_set",
  "GET /admin/adapters/{task}/traffic": "show_traffic",
  "PUT /admin/adapters/{task}/traffic": "set_traffic",
  "GET /admin/audit": "read_audit",
};

export function actionOf(method: string, path: string): string {
  const template = path
    .replace(/\/+$/, "")
    .split("/")
    .map((seg, i, all) =>
      i === 3 && all[2] === "adapters" && all[1] === "admin" ? "{task}" : /^\d+$/.test(seg) ? "{n}" : seg,
    )
    .join("/")
    .slice(0, 200);
  const key = `${method} ${template}`;
  return NAMED_ACTIONS[key] ?? key;
}
