/**
 * deploy/compose.yaml and the files it mounts (nginx.conf, prometheus.yml): PostgreSQL, two server
 * replicas, a load balancer and Prometheus, consistent with each other and with the server's
 * settings. (No Docker daemon is needed: the files are parsed, not run.)
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type ServerConfig } from "../../src/config.js";
import { dockerfileCmd } from "./dockerfile.js";
import { DEPLOY_DIR, interpolate, loadYaml } from "./manifests.js";

type Obj = any;

/** What a user exports before `docker compose up` (the admin token is required; the password is not). */
const USER_ENV = { SKT_ADMIN_TOKEN: "0123456789abcdef0123456789abcdef" };

let services: Record<string, Obj>;
let replicas: [string, Obj][];

function envOf(service: Obj): Record<string, string> {
  const env = service.environment as Record<string, string>;
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v), USER_ENV)]));
}

function configOf(service: Obj): ServerConfig {
  return loadConfig({ env: envOf(service), argv: [] });
}

/** Compose durations such as `30s`, `1m30s`, in seconds. */
function seconds(d: string): number {
  let total = 0;
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g))
    total += Number(m[1]) * { h: 3600, m: 60, s: 1, ms: 0.001 }[m[2] as "h" | "m" | "s" | "ms"];
  return total;
}

beforeAll(async () => {
  const compose = (await loadYaml(path.join(DEPLOY_DIR, "compose.yaml"))) as { services: Record<string, Obj> };
  services = compose.services;
  replicas = Object.entries(services).filter(([, s]) => s.image === "sk-tuning-server:local");
});

describe("deploy/compose.yaml", () => {
  it("runs PostgreSQL, two server replicas built from the repository's Dockerfile, a load balancer and Prometheus", async () => {
    expect(replicas.map(([name]) => name)).toEqual(["skt-1", "skt-2"]);
    expect(services.postgres.image).toMatch(/^postgres:/);
    expect(services.lb.image).toMatch(/^nginx:/);
    expect(services.prometheus.image).toMatch(/^prom\/prometheus:/);
    for (const [, s] of replicas) {
      const dockerfile = path.resolve(DEPLOY_DIR, s.build.context, s.build.dockerfile);
      expect(existsSync(dockerfile), dockerfile).toBe(true);
      // The image runs the compiled server (test/deploy/compiled-start.test.ts starts this command).
      expect(await dockerfileCmd(dockerfile)).toEqual(["node", "dist/src/cli.js", "serve"]);
    }
  });

  it("refuses to start without an admin token, as compose does for a `:?` variable", () => {
    const [, s] = replicas[0];
    expect(() => interpolate(String(s.environment.SKT_ADMIN_TOKEN), {})).toThrow(/SKT_ADMIN_TOKEN/);
  });

  it("every replica's env is a valid server configuration pointing at the compose PostgreSQL", () => {
    const pg = services.postgres.environment as Record<string, string>;
    const pgEnv = Object.fromEntries(Object.entries(pg).map(([k, v]) => [k, interpolate(v, USER_ENV)]));
    for (const [name, s] of replicas) {
      expect(() => configOf(s), name).not.toThrow();
      const url = new URL(envOf(s).SKT_STORE);
      expect(url.protocol).toBe("postgres:");
      expect(url.hostname).toBe("postgres");
      expect(url.port).toBe("5432");
      expect(url.username).toBe(pgEnv.POSTGRES_USER);
      expect(decodeURIComponent(url.password)).toBe(pgEnv.POSTGRES_PASSWORD);
      expect(url.pathname).toBe(`/${pgEnv.POSTGRES_DB}`);
      expect(s.depends_on.postgres.condition).toBe("service_healthy");
    }
  });

  it("a replica's healthcheck asks /readyz on its port; stop_grace_period covers the server's drain", () => {
    for (const [, s] of replicas) {
      const config = configOf(s);
      expect(s.healthcheck.test.join(" ")).toContain(`http://127.0.0.1:${config.port}/readyz`);
      expect(seconds(s.stop_grace_period)).toBeGreaterThan(config.shutdownTimeoutMs / 1000);
    }
  });

  it("every depends_on names a service, and every mounted file exists in deploy/", () => {
    for (const [name, s] of Object.entries(services)) {
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      for (const d of deps as string[]) expect(Object.keys(services), `${name} depends on ${d}`).toContain(d);
      for (const v of (s.volumes ?? []) as string[]) {
        const source = v.split(":")[0];
        if (source.startsWith(".")) expect(existsSync(path.resolve(DEPLOY_DIR, source)), v).toBe(true);
      }
    }
  });
});

describe("deploy/nginx.conf (the load balancer)", () => {
  let conf: string;
  beforeAll(async () => {
    conf = await readFile(path.join(DEPLOY_DIR, "nginx.conf"), "utf8");
  });

  it("balances over exactly the replicas, on the port each listens on, and is published", () => {
    const upstream = /upstream\s+(\w+)\s*\{([^}]*)\}/.exec(conf)!;
    const servers = [...upstream[2].matchAll(/^\s*server\s+([^\s;]+)/gm)].map((m) => m[1]);
    expect(servers.sort()).toEqual(replicas.map(([name, s]) => `${name}:${configOf(s).port}`).sort());
    expect(conf).toMatch(new RegExp(`proxy_pass\\s+http://${upstream[1]}\\s*;`));
    const listen = Number(/listen\s+(\d+)/.exec(conf)![1]);
    expect((services.lb.ports as string[]).some((p) => p.endsWith(`:${listen}`))).toBe(true);
  });

  it("lets uploads up to SKT_MAX_UPLOAD_BYTES through and waits longer than the server's request timeout", () => {
    const config = configOf(replicas[0][1]);
    const body = /client_max_body_size\s+(\d+)([kmg]?)\s*;/i.exec(conf)!;
    const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[body[2].toLowerCase() as "" | "k" | "m" | "g"];
    expect(Number(body[1]) * unit).toBeGreaterThanOrEqual(config.maxUploadBytes);
    const read = /proxy_read_timeout\s+(\d+)s\s*;/.exec(conf)!;
    expect(Number(read[1]) * 1000).toBeGreaterThan(config.requestTimeoutMs);
  });
});

describe("deploy/prometheus.yml", () => {
  it("scrapes /metrics on each replica directly", async () => {
    const prom = (await loadYaml(path.join(DEPLOY_DIR, "prometheus.yml"))) as Obj;
    const job = (prom.scrape_configs as Obj[]).find((j) => j.job_name === "sk-tuning-server");
    expect(job.metrics_path).toBe("/metrics");
    const targets = (job.static_configs as Obj[]).flatMap((c) => c.targets as string[]);
    expect(targets.sort()).toEqual(replicas.map(([name, s]) => `${name}:${configOf(s).port}`).sort());
  });
});
