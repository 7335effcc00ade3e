import { expect } from "vitest";
import { ServerError } from "../../src/client/client.js";

/** The `ServerError` the promise rejects with (the test fails if it resolves or rejects with something else). */
export async function serverErrorFrom(p: Promise<unknown>): Promise<ServerError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ServerError);
  return e as ServerError;
}
