// Long operations (pulls) the daemon runs for clients: each has an id the client chose, an
// AbortController the daemon fires when the client hangs up or the daemon stops, and an
// outcome kept for a minute after the end, so that a client that hung up on purpose (Ctrl-C)
// can still ask how the cleanup went.
import type { ImageRecord, OperationState, WireError } from "./protocol.ts";

export interface Outcome {
  error?: WireError;
  record?: ImageRecord;
}

interface Running {
  abort: AbortController;
  ended: Promise<Outcome>;
  end: (o: Outcome) => void;
}

const KEEP_OUTCOME_MS = 60_000;

export class OperationIdTakenError extends Error {
  override name = "OperationIdTakenError";
}

export class Operations {
  private readonly running = new Map<string, Running>();
  private readonly finished = new Map<string, { outcome: Outcome; at: number }>();
  /** When the last operation ended (or the registry was made). */
  lastEnded = Date.now();

  get count(): number {
    return this.running.size;
  }

  /** Registers `id`; the returned function records its outcome (call it exactly once). */
  begin(id: string, abort: AbortController): (outcome: Outcome) => void {
    if (this.running.has(id) || this.finished.has(id)) throw new OperationIdTakenError(`operation id ${id} is already in use`);
    let end!: (o: Outcome) => void;
    const ended = new Promise<Outcome>((r) => (end = r));
    this.running.set(id, { abort, ended, end });
    return (outcome) => {
      this.running.delete(id);
      const now = Date.now();
      for (const [k, v] of this.finished) if (now - v.at > KEEP_OUTCOME_MS) this.finished.delete(k);
      this.finished.set(id, { outcome, at: now });
      this.lastEnded = now;
      end(outcome);
    };
  }

  /** The operation's state, waiting up to `waitMs` for a running one to end. */
  async state(id: string, waitMs: number): Promise<OperationState> {
    const done = this.finished.get(id);
    if (done) return { state: "finished", ...done.outcome };
    const run = this.running.get(id);
    if (!run) return { state: "unknown" };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), Math.max(0, waitMs))));
    const outcome = await Promise.race([run.ended, timeout]);
    clearTimeout(timer);
    return outcome ? { state: "finished", ...outcome } : { state: "running" };
  }

  abortAll(reason: Error): void {
    for (const r of this.running.values()) r.abort.abort(reason);
  }

  /** Resolves true once nothing runs, false if something still does after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.running.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const timeout = Bun.sleep(Math.min(left, 100)).then(() => null);
      await Promise.race([...[...this.running.values()].map((r) => r.ended), timeout]);
    }
    return true;
  }
}
