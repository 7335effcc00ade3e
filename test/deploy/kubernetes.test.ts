/**
 * deploy/kubernetes/: every manifest is valid against the Kubernetes (and prometheus-operator)
 * schemas, and the fields that must agree with the server and with each other do: probe paths are
 * routes the server answers, the grace period covers preStop plus the server's drain, one worker's
 * SKT_THREADS matches the CPU request, the memory request covers the measured RSS plus the cache, the HPA, PDB,
 * Service and ServiceMonitor select the Deployment's pods, and every Secret key the pods read exists.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CONFIG_OPTIONS, loadConfig, type ServerConfig } from "../../src/config.js";
import { createMetrics } from "../../src/metrics.js";
import { REPO_ROOT } from "../../scripts/lib/paths.js";
import { makeRig } from "../server/setup.js";
import { K8S_DIR, loadDocuments, loadYaml, validateManifest, type Manifest } from "./manifests.js";

/** Seconds of engine drain (queue, worker stop) the grace period keeps after the HTTP drain's cap. */
const ENGINE_DRAIN_MARGIN_S = 5;

type Obj = any;

const byKind = new Map<string, Manifest>();
const files = new Map<string, Manifest[]>();
let deployment: Manifest;
let container: Obj;
let podLabels: Record<string, string>;
let secret: Manifest;

/** Kubernetes quantities: CPU in cores, memory in bytes. */
function cpuCores(q: string | number): number {
  const s = String(q);
  return s.endsWith("m") ? Number(s.slice(0, -1)) / 1000 : Number(s);
}
function memBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`not a memory quantity: ${q}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 } as const;
  return Number(m[1]) * (m[2] ? unit[m[2] as keyof typeof unit] : 1);
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The server's configuration as the container's env gives it (secrets from the example Secret). */
function containerConfig(): ServerConfig {
  const env: Record<string, string> = {};
  for (const e of container.env as Obj[]) {
    if (e.value !== undefined) env[e.name] = e.value;
    else env[e.name] = secret.stringData[e.valueFrom.secretKeyRef.key];
  }
  return loadConfig({ env, argv: [] });
}

/** The highest RSS any soak in docs/reliability.md measured, in bytes ("RSS 323 → 336 MB (max 368)"). */
async function measuredPeakRss(): Promise<number> {
  const doc = await readFile(path.join(REPO_ROOT, "docs/reliability.md"), "utf8");
  const peaks = [...doc.matchAll(/RSS \d+ → \d+ MB \(max (\d+)\)/g)].map((m) => Number(m[1]));
  expect(peaks.length).toBeGreaterThan(0);
  return Math.max(...peaks) * 1e6;
}

beforeAll(async () => {
  for (const dir of [K8S_DIR, path.join(K8S_DIR, "custom-metrics")]) {
    for (const f of await readdir(dir)) {
      if (!f.endsWith(".yaml") || f === "kustomization.yaml" || f === "prometheus-adapter-values.yaml") continue;
      const rel = path.relative(K8S_DIR, path.join(dir, f));
      const docs = await loadDocuments(path.join(dir, f));
      files.set(rel, docs);
      if (dir === K8S_DIR) for (const d of docs) byKind.set(d.kind, d);
    }
  }
  deployment = byKind.get("Deployment")!;
  container = deployment.spec.template.spec.containers[0];
  podLabels = deployment.spec.template.metadata.labels;
  secret = byKind.get("Secret")!;
});

describe("deploy/kubernetes schemas", () => {
  it("has the Deployment, Service, PDB, HPA, Secret and ServiceMonitor, each valid against its schema", () => {
    expect([...byKind.keys()].sort()).toEqual(
      ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret", "Service", "ServiceMonitor"].sort(),
    );
    for (const [file, docs] of files) for (const d of docs) expect(() => validateManifest(d, file)).not.toThrow();
  });

  it("the validator rejects a broken Deployment (so passing means something)", () => {
    const broken = structuredClone(deployment);
    broken.spec.template.spec.containers[0].ports[0].containerPort = "http";
    expect(() => validateManifest(broken, "broken.yaml")).toThrow(/containerPort/);
    const noSelector = structuredClone(deployment);
    delete noSelector.spec.selector;
    expect(() => validateManifest(noSelector, "broken.yaml")).toThrow(/selector/);
  });

  it("kustomization.yaml applies the core manifests, not the example Secret or the CRD-dependent ServiceMonitor", async () => {
    const k = (await loadYaml(path.join(K8S_DIR, "kustomization.yaml"))) as { resources: string[] };
    expect(k.resources.sort()).toEqual(["deployment.yaml", "hpa.yaml", "pdb.yaml", "service.yaml"]);
  });
});

describe("the Deployment agrees with the server", () => {
  it("its env is a valid configuration of known settings", () => {
    const known = new Set(CONFIG_OPTIONS.map((o) => o.env));
    // SKT_STORE comes with the PostgreSQL store (branch `replicas`); once merged it is a known setting.
    const pending = known.has("SKT_STORE") ? [] : ["SKT_STORE"];
    for (const e of container.env as Obj[]) expect(known.has(e.name) || pending.includes(e.name), e.name).toBe(true);
    expect(() => containerConfig()).not.toThrow();
  });

  it("probes: readiness on /readyz and liveness on /healthz, on the port the server listens on", async () => {
    const config = containerConfig();
    const ports = container.ports as { name: string; containerPort: number }[];
    const portOf = (p: string | number) => (typeof p === "number" ? p : ports.find((x) => x.name === p)?.containerPort);
    expect(container.readinessProbe.httpGet.path).toBe("/readyz");
    expect(container.livenessProbe.httpGet.path).toBe("/healthz");
    for (const probe of [container.readinessProbe, container.livenessProbe])
      expect(portOf(probe.httpGet.port)).toBe(config.port);

    // The paths are the server's: /readyz answers 200 "ready" from a ready service, /healthz 200.
    const rig = makeRig();
    const ready = await rig.app.request(container.readinessProbe.httpGet.path);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { status: string }).status).toBe("ready");
    const live = await rig.app.request(container.livenessProbe.httpGet.path);
    expect(live.status).toBe(200);
  });

  it("terminationGracePeriodSeconds covers preStop + SKT_SHUTDOWN_TIMEOUT_MS + the engine's drain", () => {
    const config = containerConfig();
    const preStop = container.lifecycle.preStop;
    // Either Kubernetes' own sleep action or `sleep N` in the container.
    if (!preStop.sleep) expect(preStop.exec.command).toEqual(["sleep", expect.stringMatching(/^\d+$/)]);
    const preStopSeconds = Number(preStop.sleep ? preStop.sleep.seconds : preStop.exec.command[1]);
    expect(preStopSeconds).toBeGreaterThan(0);
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(
      preStopSeconds + config.shutdownTimeoutMs / 1000 + ENGINE_DRAIN_MARGIN_S,
    );
  });

  it("SKT_THREADS equals the CPU request with one worker; the limit is not below it", () => {
    const config = containerConfig();
    const { requests, limits } = container.resources;
    expect(cpuCores(requests.cpu)).toBe(config.threads);
    // Set explicitly: one worker, whatever cores the node has (the memory request counts one copy of the weights).
    expect(container.env.find((e: Obj) => e.name === "SKT_WORKERS")?.value).toBe("1");
    expect(config.workers * config.threads).toBeLessThanOrEqual(cpuCores(requests.cpu));
    expect(cpuCores(limits.cpu)).toBeGreaterThanOrEqual(cpuCores(requests.cpu));
  });

  it("the memory request covers the soak's peak RSS plus a full adapter cache; the limit adds an upload", async () => {
    const config = containerConfig();
    const { requests, limits } = container.resources;
    const peak = await measuredPeakRss();
    expect(memBytes(requests.memory)).toBeGreaterThanOrEqual(peak + config.cacheBytes);
    expect(memBytes(limits.memory)).toBeGreaterThanOrEqual(memBytes(requests.memory) + config.maxUploadBytes);
  });

  it("the admin token and the database URL come from Secret keys that exist", () => {
    const refs = (container.env as Obj[]).filter((e) => e.valueFrom?.secretKeyRef);
    expect(refs.map((e) => e.name).sort()).toEqual(["SKT_ADMIN_TOKEN", "SKT_STORE"]);
    for (const e of refs) {
      expect(e.valueFrom.secretKeyRef.name).toBe(secret.metadata.name);
      expect(Object.keys(secret.stringData)).toContain(e.valueFrom.secretKeyRef.key);
    }
    const store = secret.stringData[refs.find((e) => e.name === "SKT_STORE").valueFrom.secretKeyRef.key] as string;
    expect(new URL(store).protocol).toBe("postgres:");
  });

  it("runs as the image's non-root user with a read-only root and writable adapters/ and /tmp", () => {
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    const mounts = (container.volumeMounts as Obj[]).map((m) => m.mountPath).sort();
    expect(mounts).toEqual(["/app/adapters", "/tmp"]);
    for (const m of container.volumeMounts as Obj[])
      expect((pod.volumes as Obj[]).find((v) => v.name === m.name)?.emptyDir).toBeDefined();
  });
});

describe("the other objects select the Deployment's pods", () => {
  it("the Deployment's selector matches its own pod labels", () => {
    expect(matches(deployment.spec.selector.matchLabels, podLabels)).toBe(true);
  });

  it("the Service selects the pods and targets the container's named port", () => {
    const svc = byKind.get("Service")!;
    expect(matches(svc.spec.selector, podLabels)).toBe(true);
    const names = (container.ports as Obj[]).map((p) => p.name);
    for (const p of svc.spec.ports as Obj[]) expect(names).toContain(p.targetPort);
  });

  it("the PodDisruptionBudget selects the pods and leaves one available at the HPA's minimum", () => {
    const pdb = byKind.get("PodDisruptionBudget")!;
    const hpa = byKind.get("HorizontalPodAutoscaler")!;
    expect(matches(pdb.spec.selector.matchLabels, podLabels)).toBe(true);
    expect(pdb.spec.minAvailable).toBeGreaterThanOrEqual(1);
    // A drain can still evict one pod: minAvailable below the minimum replica count.
    expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);
  });

  it("both HPAs target the Deployment and scale on CPU; the custom one on skt_queue_depth", async () => {
    const custom = files.get("custom-metrics/hpa-queue-depth.yaml")![0];
    for (const hpa of [byKind.get("HorizontalPodAutoscaler")!, custom]) {
      expect(hpa.spec.scaleTargetRef).toEqual({
        apiVersion: deployment.apiVersion,
        kind: deployment.kind,
        name: deployment.metadata.name,
      });
      expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
      expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
      const cpu = (hpa.spec.metrics as Obj[]).find((m) => m.type === "Resource");
      expect(cpu.resource.name).toBe("cpu");
    }
    // The HPA owns the replica count.
    expect(deployment.spec.replicas).toBeUndefined();

    const pods = (custom.spec.metrics as Obj[]).find((m) => m.type === "Pods");
    const name = pods.pods.metric.name as string;
    expect(name).toBe("skt_queue_depth");
    // The server exports that gauge, and prometheus-adapter's rule serves it under that name.
    const metrics = createMetrics({ collectDefaults: false });
    expect(metrics.registry.getSingleMetric(name)).toBeDefined();
    const values = (await loadYaml(path.join(K8S_DIR, "custom-metrics/prometheus-adapter-values.yaml"))) as Obj;
    const rule = (values.rules.custom as Obj[]).find((r) => r.name.as === name);
    expect(rule.seriesQuery).toContain(name);
    expect(rule.resources.overrides.pod.resource).toBe("pod");
  });

  it("metrics: the pod annotations and the ServiceMonitor scrape /metrics on the server's port", async () => {
    const config = containerConfig();
    const ann = deployment.spec.template.metadata.annotations;
    expect(ann["prometheus.io/scrape"]).toBe("true");
    expect(Number(ann["prometheus.io/port"])).toBe(config.port);
    expect(ann["prometheus.io/path"]).toBe("/metrics");
    const res = await makeRig().app.request(ann["prometheus.io/path"]);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("skt_queue_depth");

    const sm = byKind.get("ServiceMonitor")!;
    const svc = byKind.get("Service")!;
    expect(matches(sm.spec.selector.matchLabels, svc.metadata.labels)).toBe(true);
    const svcPorts = (svc.spec.ports as Obj[]).map((p) => p.name);
    for (const ep of sm.spec.endpoints as Obj[]) {
      expect(svcPorts).toContain(ep.port);
      expect(ep.path).toBe("/metrics");
    }
  });
});
