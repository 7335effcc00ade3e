/**
 * vitest setup file (every suite):
 * - responses the global `fetch` gets from servers registered with `checkResponsesFrom` (child
 *   processes) are checked against the OpenAPI document;
 * - a test fails when any HTTP response it received broke the document (see openapi-contract.ts),
 *   even if the request's own `ContractViolation` was swallowed.
 */
import { afterEach, expect } from "vitest";
import { checkFetchedResponse, takeContractViolations } from "./openapi-contract.js";

const plainFetch = globalThis.fetch;
globalThis.fetch = async function checkedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const res = await plainFetch(input, init);
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const method = init?.method ?? (input instanceof Request ? input.method : "GET");
  await checkFetchedResponse(method, url, res);
  return res;
};

afterEach(() => {
  expect(takeContractViolations(), "responses that do not match the OpenAPI document").toEqual([]);
});
