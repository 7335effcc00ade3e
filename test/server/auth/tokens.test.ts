import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";

// Count timingSafeEqual calls: every entry must be compared, match or not.
const compared = vi.hoisted(() => ({ calls: 0 }));
vi.mock("node:crypto", async (importOriginal) => {
  const orig = await importOriginal<typeof import("node:crypto")>();
  return {
    ...orig,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compared.calls++;
      return orig.timingSafeEqual(a, b);
    },
  };
});

// The contract-check setup file may already have loaded the auth module with the real crypto.
vi.resetModules();
const { AdminTokens, globMatches, sha256Hex } = await import("../../../src/server/auth/tokens.js");
const { hashTokenCommand, tokenEntry } = await import("../../../src/server/auth/hash-token.js");

const hex = (t: string) => createHash("sha256").update(t).digest("hex");
const file = (entries: unknown) => ({ path: "tokens.json", text: JSON.stringify(entries) });

/** Naive reference: the glob as a regular expression. */
function globRegex(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .split("*")
      .map((p) => p.replace(/[-]/g, "\\-"))
      .join(".*")}$`,
  );
}

describe("globMatches", () => {
  it.each([
    ["*", "anything", true],
    ["team-a-*", "team-a-sst2", true],
    ["team-a-*", "team-a-", true],
    ["team-a-*", "team-b-sst2", false],
    ["sst2", "sst2", true],
    ["sst2", "sst2x", false],
    ["*-prod", "spam-prod", true],
    ["a*b*c", "abc", true],
    ["a*b*c", "acb", false],
    ["ab*ba", "aba", false], // prefix and suffix may not overlap
  ])("%s ~ %s → %s", (glob, task, want) => {
    expect(globMatches(glob, task)).toBe(want);
  });

  it("agrees with a regular-expression reference on random globs and names", () => {
    const ch = fc.constantFrom("a", "b", "-", "1");
    const glob = fc.array(fc.oneof(ch, fc.constant("*")), { minLength: 1, maxLength: 8 }).map((a) => a.join(""));
    const name = fc.array(ch, { minLength: 0, maxLength: 10 }).map((a) => a.join(""));
    fc.assert(
      fc.property(glob, name, (g, n) => globMatches(g, n) === globRegex(g).test(n)),
      { numRuns: 3000 },
    );
  });
});

describe("AdminTokens", () => {
  const entries = [
    { name: "reader", sha256: hex("reader-token-0123456789"), scopes: ["read"] },
    {
      name: "team-a",
      sha256: hex("team-a-token-0123456789").toUpperCase(),
      scopes: ["read", "write"],
      tasks: "team-a-*",
    },
  ];

  it("authenticates by hash, with the entry's scopes and glob (default *)", () => {
    const t = AdminTokens.from({ envToken: "env-token-0123456789", file: file(entries) });
    expect(t.names).toEqual(["admin", "reader", "team-a"]);
    const env = t.authenticate("env-token-0123456789")!;
    expect(env.name).toBe("admin");
    expect([...env.scopes].sort()).toEqual(["read", "traffic", "write"]);
    expect(env.tasks).toBe("*");
    expect(t.authenticate("reader-token-0123456789")).toMatchObject({ name: "reader", tasks: "*" });
    const a = t.authenticate("team-a-token-0123456789")!;
    expect(a.name).toBe("team-a");
    expect([...a.scopes].sort()).toEqual(["read", "write"]);
    expect(a.tasks).toBe("team-a-*");
    expect(t.authenticate("nope")).toBeNull();
    expect(t.authenticate(hex("reader-token-0123456789"))).toBeNull(); // the hash is not the token
  });

  it("compares against every entry, whether the match is first, last or absent", () => {
    const t = AdminTokens.from({ envToken: "env-token-0123456789", file: file(entries) });
    for (const presented of ["env-token-0123456789", "team-a-token-0123456789", "wrong"]) {
      compared.calls = 0;
      t.authenticate(presented);
      expect(compared.calls).toBe(3);
    }
  });

  it("is empty (admin disabled) with neither source", () => {
    expect(AdminTokens.from({}).isEmpty).toBe(true);
    expect(AdminTokens.from({ file: file([]) }).isEmpty).toBe(true);
  });

  it.each([
    ["not JSON", "{", /is not valid JSON/],
    ["not a list", JSON.stringify({ name: "x" }), /must hold a JSON list/],
    [
      "bad hash",
      JSON.stringify([{ name: "ci", sha256: "abc", scopes: ["read"] }]),
      /entry 0 \("ci"\): sha256: must be the token's sha256/,
    ],
    [
      "unknown scope",
      JSON.stringify([entries[0], { name: "ci", sha256: hex("x"), scopes: ["admin"] }]),
      /entry 1 \("ci"\): scopes\.0: each scope must be one of: read, write, traffic/,
    ],
    [
      "no scopes",
      JSON.stringify([{ name: "ci", sha256: hex("x"), scopes: [] }]),
      /entry 0 \("ci"\): scopes: must list at least one scope/,
    ],
    ["typo'd key", JSON.stringify([{ name: "ci", sha256: hex("x"), scope: ["read"] }]), /entry 0 \("ci"\):.*scope/],
    [
      "bad glob",
      JSON.stringify([{ name: "ci", sha256: hex("x"), scopes: ["read"], tasks: "../*" }]),
      /entry 0 \("ci"\): tasks: must be a task-name glob/,
    ],
    ["bad name", JSON.stringify([{ name: "a b", sha256: hex("x"), scopes: ["read"] }]), /entry 0 \("a b"\): name:/],
    [
      "duplicate name",
      JSON.stringify([entries[0], { ...entries[0], sha256: hex("y") }]),
      /entry 1 \("reader"\): the name is used twice/,
    ],
    [
      "duplicate hash",
      JSON.stringify([entries[0], { ...entries[0], name: "other" }]),
      /entry 1 \("other"\): the same token hash appears twice/,
    ],
    [
      "admin clash",
      JSON.stringify([{ ...entries[0], name: "admin" }]),
      /entry 0 \("admin"\): the name is used twice \("admin" is SKT_ADMIN_TOKEN's name\)/,
    ],
  ])("refuses a file with %s, naming the file and the entry", (_what, text, message) => {
    let err: unknown;
    try {
      AdminTokens.from({ envToken: "env-token-0123456789", file: { path: "/etc/skt/tokens.json", text } });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ kind: "bad_request", code: "invalid_config" });
    expect((err as Error).message).toMatch(/^SKT_ADMIN_TOKENS_FILE \(\/etc\/skt\/tokens\.json\)/);
    expect((err as Error).message).toMatch(message);
  });

  it("load() reads the file, and says so when it cannot", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "skt-tokens-"));
    const p = path.join(dir, "tokens.json");
    writeFileSync(p, JSON.stringify(entries));
    expect(AdminTokens.load({ adminToken: undefined, adminTokensFile: p }).names).toEqual(["reader", "team-a"]);
    expect(() => AdminTokens.load({ adminToken: undefined, adminTokensFile: path.join(dir, "missing.json") })).toThrow(
      /SKT_ADMIN_TOKENS_FILE: cannot read .*missing\.json/,
    );
  });
});

describe("hash-token", () => {
  async function* lines(...chunks: string[]) {
    for (const c of chunks) yield Buffer.from(c);
  }

  it("prints an entry the server accepts and that authenticates the token", async () => {
    let out = "";
    const token = "s3cret-token_ABCDEFGH+/=";
    await hashTokenCommand(["--name", "ci", "--scopes", "read,write", "--tasks", "team-a-*"], {
      stdin: lines("s3cret-token_", "ABCDEFGH+/=\n", "ignored second line\n"),
      stdout: { write: (s: string) => (out += s) },
    });
    const entry = JSON.parse(out);
    expect(entry).toEqual({ name: "ci", sha256: sha256Hex(token), scopes: ["read", "write"], tasks: "team-a-*" });
    expect(out).not.toContain(token);
    const t = AdminTokens.from({ file: file([entry]) });
    expect(t.authenticate(token)?.name).toBe("ci");
  });

  it.each([
    [["--scopes", "read"], "a-long-enough-token-123", /--name is required/],
    [["--name", "ci", "--scopes", "root"], "a-long-enough-token-123", /unknown scope "root"/],
    [["--name", "ci"], "short", /shorter than 16/],
    [["--name", "ci"], "has spaces in it, which bearer tokens cannot", /may contain only/],
    [["--name", "ci"], "", /no token on stdin/],
    [["--name", "ci", "--tasks", "A*"], "a-long-enough-token-123", /tasks: must be a task-name glob/],
    [["--name", "ci", "--bogus"], "a-long-enough-token-123", /Unknown option/],
  ])("refuses %j", async (argv, stdin, message) => {
    await expect(hashTokenCommand(argv, { stdin: lines(stdin), stdout: { write: () => undefined } })).rejects.toThrow(
      message,
    );
  });

  it("tokenEntry is deterministic and matches node's sha256", () => {
    expect(tokenEntry("0123456789abcdefXYZ", { name: "x", scopes: ["traffic"], tasks: "*" }).sha256).toBe(
      hex("0123456789abcdefXYZ"),
    );
  });
});
