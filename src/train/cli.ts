/** `train` and `eval` commands (filled in with the trainer). */
export async function trainCommand(_argv: string[]): Promise<void> {
  throw new Error("train: not built yet");
}
export async function evalCommand(_argv: string[]): Promise<void> {
  throw new Error("eval: not built yet");
}
