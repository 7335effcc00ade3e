/**
 * `/docs` in a real browser: headless Chromium (the package CI installs for the software Vulkan
 * driver, scripts/ci/install-webgpu.sh) loads the page from a listening server, runs Swagger UI's
 * script, which fetches /openapi.json and renders one block per operation. The served-HTML tests in
 * ops.test.ts cannot see whether the script runs; this one checks the rendered DOM and that every
 * file the browser asked for was served by this server with a 2xx.
 *
 * Without Chromium the suite is skipped with the reason in its name, unless SKT_REQUIRE_WEBGPU=1
 * (CI), where the missing browser fails it instead.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { serve, type ServerType } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webgpuRequired } from "../../scripts/lib/webgpu-env.js";
import { makeRig } from "./setup.js";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const skip = !CHROMIUM && !webgpuRequired();
const suiteName = `/docs rendered by headless Chromium${skip ? " [skipped: no chromium; run scripts/ci/install-webgpu.sh]" : ""}`;

/** Operations whose blocks must appear: one per tag family, so a page that renders nothing fails. */
const EXPECTED_PATHS = ["/classify", "/embed", "/admin/adapters", "/metrics", "/readyz"];

describe.skipIf(skip)(suiteName, () => {
  const requests: { path: string; status: number }[] = [];
  let server: ServerType;
  let origin = "";

  beforeAll(async () => {
    if (!CHROMIUM) throw new Error("SKT_REQUIRE_WEBGPU=1 but no chromium binary (scripts/ci/install-webgpu.sh)");
    const rig = makeRig();
    await new Promise<void>((resolve) => {
      server = serve(
        {
          fetch: async (req: Request) => {
            const res = await rig.app.fetch(req);
            requests.push({ path: new URL(req.url).pathname, status: res.status });
            return res;
          },
          port: 0,
          hostname: "127.0.0.1",
        },
        () => resolve(),
      );
    });
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  it("runs Swagger UI: the page fetches /openapi.json and renders a block per operation", async () => {
    const { stdout } = await promisify(execFile)(
      CHROMIUM!,
      [
        "--headless",
        "--no-sandbox", // CI runs as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        // Virtual time: the dump waits until the page's fetches and rendering have settled.
        "--virtual-time-budget=15000",
        "--dump-dom",
        `${origin}/docs`,
      ],
      { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
    );
    // Rendered by the script, not in the served HTML: the API's title and the operation blocks.
    expect(stdout).toContain("SK-Tuning inference server");
    expect(stdout).toMatch(/class="opblock /);
    for (const p of EXPECTED_PATHS) expect(stdout, p).toContain(`data-path="${p}"`);

    const paths = requests.map((r) => r.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "/docs",
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/init.js",
        "/openapi.json",
      ]),
    );
    // Everything the browser asked for existed (no missing asset; favicon is the browser's own guess).
    expect(requests.filter((r) => r.status >= 400 && r.path !== "/favicon.ico")).toEqual([]);
  }, 120_000);
});
