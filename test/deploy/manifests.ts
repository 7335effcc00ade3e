/**
 * Loading and schema validation of the files under deploy/: the Kubernetes manifests (validated with
 * kubernetes-models, whose JSON schemas are compiled into the package, so nothing is downloaded) and
 * the compose file's `${VAR}` interpolation.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { REPO_ROOT } from "../../scripts/lib/paths.js";

export const DEPLOY_DIR = path.join(REPO_ROOT, "deploy");
export const K8S_DIR = path.join(DEPLOY_DIR, "kubernetes");

/** A parsed manifest: the fields the tests read, typed loosely (the schema check is separate). */
export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [k: string]: any };
  [k: string]: any;
};

/** The validators for every kind deploy/kubernetes/ uses, keyed `apiVersion/kind`. */
const VALIDATORS: Record<string, (m: Manifest) => void> = {
  "apps/v1/Deployment": (m) => new Deployment(m).validate(),
  "v1/Service": (m) => new Service(m).validate(),
  "policy/v1/PodDisruptionBudget": (m) => new PodDisruptionBudget(m).validate(),
  "autoscaling/v2/HorizontalPodAutoscaler": (m) => new HorizontalPodAutoscaler(m).validate(),
  "v1/Secret": (m) => new Secret(m).validate(),
  "monitoring.coreos.com/v1/ServiceMonitor": (m) =>
    new ServiceMonitor(m as unknown as ConstructorParameters<typeof ServiceMonitor>[0]).validate(),
};

/** Throws naming the file and the first schema violation; throws for a kind with no validator. */
export function validateManifest(m: Manifest, file: string): void {
  const key = `${m.apiVersion}/${m.kind}`;
  const validate = VALIDATORS[key];
  if (!validate) throw new Error(`${file}: no schema for ${key}`);
  try {
    validate(m);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Every YAML document of a file (a manifest file may hold several, separated by `---`). */
export async function loadDocuments(file: string): Promise<Manifest[]> {
  const docs = parseAllDocuments(await readFile(file, "utf8"));
  return docs.map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0].message}`);
    return d.toJS() as Manifest;
  });
}

export async function loadYaml(file: string): Promise<unknown> {
  // Compose files use `<<: *anchor` merge keys.
  return parse(await readFile(file, "utf8"), { merge: true }) as unknown;
}

/**
 * Compose's interpolation: `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`, `${NAME}`, from `env`.
 * A required variable that is missing throws, as `docker compose` refuses to start.
 */
export function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g,
    (_m, name: string, op?: string, arg?: string) => {
      const v = env[name];
      const unset = op?.startsWith(":") ? v === undefined || v === "" : v === undefined;
      if (op?.endsWith("?")) {
        if (unset) throw new Error(`required variable ${name} is missing: ${arg ?? ""}`);
        return v!;
      }
      if (op?.endsWith("-") && unset) return arg ?? "";
      return v ?? "";
    },
  );
}
