/**
 * The images run compiled JavaScript with production dependencies only: the runtime stage copies
 * dist/ (built by `npm run build:js`) and a node_modules installed with `--omit=dev` (the CPU image
 * also `--omit=optional`), and no TypeScript sources or tsx. compiled-start.test.ts runs the CMD.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../scripts/lib/paths.js";
import { dockerfileCmd, dockerStages, type DockerStage } from "./dockerfile.js";

const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
};
const buildConfig = JSON.parse(await readFile(path.join(REPO_ROOT, "tsconfig.build.json"), "utf8")) as {
  compilerOptions: { outDir: string; rootDir: string };
  include: string[];
};

/** `COPY --from=<stage> <src…> <dest>` instructions of a stage. */
function copiesFrom(stage: DockerStage): { from: string; sources: string[]; dest: string }[] {
  return stage.instructions
    .filter((i) => /^COPY\s/i.test(i))
    .map((i) => i.split(/\s+/).slice(1))
    .map((args) => {
      const from = args.find((a) => a.startsWith("--from="))?.slice("--from=".length) ?? "";
      const paths = args.filter((a) => !a.startsWith("--"));
      return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
    });
}

describe.each([
  ["Dockerfile", "--omit=dev --omit=optional"],
  ["Dockerfile.gpu", "--omit=dev"],
])("%s", (file, omit) => {
  const dockerfile = path.join(REPO_ROOT, file);

  it("the build stage compiles with `npm run build:js`, which is tsc on tsconfig.build.json into dist/", async () => {
    const stages = await dockerStages(dockerfile);
    const build = stages.find((s) => s.name === "build")!;
    expect(build.instructions.some((i) => /^RUN .*npm run build:js/.test(i))).toBe(true);
    expect(pkg.scripts["build:js"]).toBe("tsc -p tsconfig.build.json");
    expect(buildConfig.compilerOptions.outDir).toBe("dist");
    expect(buildConfig.include).toEqual(["src"]);
  });

  it(`node_modules comes from a stage that installs with ${omit}`, async () => {
    const stages = await dockerStages(dockerfile);
    const runtime = stages.at(-1)!;
    const modules = copiesFrom(runtime).find((c) => c.sources.includes("/app/node_modules"))!;
    const deps = stages.find((s) => s.name === modules.from)!;
    const install = deps.instructions.find((i) => /^RUN .*npm ci/.test(i))!;
    for (const flag of omit.split(" ")) expect(install).toContain(flag);
    if (!omit.includes("optional")) expect(install).not.toContain("--omit=optional");
  });

  it("the runtime stage has dist/, models/ and adapters/ but no sources, and runs node on dist/", async () => {
    const runtime = (await dockerStages(dockerfile)).at(-1)!;
    const sources = copiesFrom(runtime).flatMap((c) => c.sources);
    expect(sources).toEqual(expect.arrayContaining(["/app/dist", "/app/models", "/app/adapters"]));
    expect(sources.filter((s) => /\/src$|tsconfig|\.ts$/.test(s))).toEqual([]);
    expect(runtime.instructions.join("\n")).not.toMatch(/\btsx\b/);
    const cmd = await dockerfileCmd(dockerfile);
    expect(cmd).toEqual(["node", "dist/src/cli.js", "serve"]);
    expect(pkg.scripts["start:js"]).toBe(cmd.join(" "));
  });
});

describe("Dockerfile.gpu: the WebGPU/Vulkan image", () => {
  const dockerfile = path.join(REPO_ROOT, "Dockerfile.gpu");
  /** The runtime stage's ENV assignments (KEY=value pairs of every ENV instruction). */
  async function runtimeEnv(): Promise<Record<string, string>> {
    const runtime = (await dockerStages(dockerfile)).at(-1)!;
    const pairs = runtime.instructions
      .filter((i) => /^ENV\s/i.test(i))
      .flatMap((i) => i.split(/\s+/).slice(1))
      .map((kv) => kv.split("=") as [string, string]);
    return Object.fromEntries(pairs);
  }

  it("installs the Vulkan loader, Mesa's drivers and vulkaninfo, and nothing of CUDA", async () => {
    const runtime = (await dockerStages(dockerfile)).at(-1)!;
    const install = runtime.instructions.find((i) => /^RUN .*apt-get install/.test(i))!;
    for (const pkg of ["libvulkan1", "mesa-vulkan-drivers", "vulkan-tools"])
      expect(install).toMatch(new RegExp(`\\s${pkg}\\s`));
    expect(runtime.instructions.join("\n")).not.toMatch(/cuda|cudnn|nvidia-/i);
  });

  it("defaults to SKT_DEVICE=webgpu with the NVIDIA graphics capability (which mounts the Vulkan ICD) and a private XDG_RUNTIME_DIR", async () => {
    const env = await runtimeEnv();
    expect(env.SKT_DEVICE).toBe("webgpu");
    expect(env.NVIDIA_DRIVER_CAPABILITIES.split(",").sort()).toEqual(["compute", "graphics", "utility"]);
    const runtime = (await dockerStages(dockerfile)).at(-1)!;
    const mkdir = runtime.instructions.find((i) => i.includes(env.XDG_RUNTIME_DIR) && /^RUN /.test(i))!;
    expect(mkdir).toMatch(/chown node:node/);
    expect(mkdir).toMatch(/chmod 700/);
  });

  it("the docs say how to run it on NVIDIA (graphics capability) and how to check the GPU was found", async () => {
    const docs = await readFile(path.join(REPO_ROOT, "docs/server.md"), "utf8");
    const gpu = docs.slice(docs.indexOf("**GPU.**"));
    const run = /docker run --gpus all -e NVIDIA_DRIVER_CAPABILITIES=(\S+)/.exec(gpu)!;
    expect(run[1] === "all" || run[1].split(",").includes("graphics")).toBe(true);
    for (const check of ["/readyz", "skt_device_info", "backbone on", "vulkaninfo --summary", "VK_ICD_FILENAMES"])
      expect(gpu).toContain(check);
  });
});
