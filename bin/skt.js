#!/usr/bin/env node
// The `skt` command. It runs the TypeScript sources through tsx, as `npm start` does, so it works
// from a clone without a build step and from any working folder (tsx is resolved from here).
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
