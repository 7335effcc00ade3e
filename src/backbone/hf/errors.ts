/** Every refusal of a Hugging Face folder: a start-up error that names the file, field or tensor at fault. */
import { SktError } from "../../errors.js";

export function modelError(code: string, message: string, details?: Record<string, unknown>): SktError {
  return new SktError("bad_request", code, message, details);
}
