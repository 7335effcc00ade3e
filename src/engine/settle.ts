/**
 * A queued row's single way out. Whichever path reaches it first — its batch's result, a worker
 * failure, its request's deadline or cancellation, another row of its request failing, shutdown —
 * settles it; every later attempt is a no-op that returns false, so a row is answered exactly once.
 */
export class SettleHandle<T> {
  private state: "pending" | "resolved" | "rejected" = "pending";

  constructor(
    private readonly onResolve: (value: T) => void,
    private readonly onReject: (error: Error) => void,
  ) {}

  get settled(): boolean {
    return this.state !== "pending";
  }

  /** True when this call settled the row; false when it had already been settled. */
  resolve(value: T): boolean {
    if (this.state !== "pending") return false;
    this.state = "resolved";
    this.onResolve(value);
    return true;
  }

  /** True when this call settled the row; false when it had already been settled. */
  reject(error: Error): boolean {
    if (this.state !== "pending") return false;
    this.state = "rejected";
    this.onReject(error);
    return true;
  }
}
