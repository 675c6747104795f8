// The daemon's HTTP side: routes of protocol.ts onto the services composed at start-up. Reads
// (list, show, ls) answer from the store and the images; a pull streams its progress events as
// newline-delimited JSON and ends with its record or its error. A client that hangs up (Ctrl-C,
// a killed CLI) aborts its pull: the same AbortSignal an interrupt fires in-process, so the same
// cleanup runs and nothing is left behind.
import { ImageError, ImageNotFoundError } from "./image-service.ts";
import type { Services } from "./compose.ts";
import { OperationIdTakenError, Operations, type Outcome } from "./operations.ts";
import {
  CLIENT_HEADER,
  DAEMON_HEADER,
  parseVersionTag,
  readsStdin,
  sameVersion,
  versionMismatchMessage,
  versionTag,
  wireError,
  type HealthInfo,
  type PruneParams,
  type PullEvent,
  type PullLine,
  type PullParams,
  type VersionInfo,
} from "./protocol.ts";
import { pruneCache } from "./prune.ts";

export interface DaemonServerOptions {
  services: Services;
  version: VersionInfo;
  socket: string;
  startedAt: Date;
  idleExitMs: number | null;
  /** Asked to stop the daemon (after /v1/shutdown has answered). */
  requestStop: (reason: string) => void;
}

/** A request the daemon cannot read (a client of another make, or a bug): 400. */
class ProtocolError extends Error {
  override name = "ProtocolError";
}

class DaemonStoppingError extends Error {
  override name = "DaemonStoppingError";
}

const OPERATION_ID = /^[A-Za-z0-9_-]{8,64}$/;

export class DaemonServer {
  readonly operations = new Operations();
  /** Requests being answered now (a pull's stream counts as an operation, not a request). */
  private inFlight = 0;
  private lastRequest = Date.now();
  private stopping = false;
  private readonly headers: Record<string, string>;

  constructor(private readonly o: DaemonServerOptions) {
    this.headers = { [DAEMON_HEADER]: versionTag(o.version) };
  }

  /** How long nothing has run: 0 while a request or an operation does. */
  idleMs(now = Date.now()): number {
    if (this.inFlight > 0 || this.operations.count > 0) return 0;
    return now - Math.max(this.lastRequest, this.operations.lastEnded);
  }

  /** From now on every request but health is refused, and running pulls are aborted. */
  beginStop(reason: string): void {
    this.stopping = true;
    this.operations.abortAll(new DaemonStoppingError(`the daemon is stopping (${reason})`));
  }

  readonly fetch = async (req: Request): Promise<Response> => {
    this.inFlight++;
    try {
      return await this.route(req);
    } catch (err) {
      return this.errorResponse(err);
    } finally {
      this.inFlight--;
      this.lastRequest = Date.now();
    }
  };

  private json(body: unknown, status = 200): Response {
    return Response.json(body, { status, headers: this.headers });
  }

  private errorResponse(err: unknown): Response {
    const status = err instanceof ImageNotFoundError ? 404 : err instanceof ImageError || err instanceof ProtocolError || err instanceof OperationIdTakenError ? 400 : err instanceof DaemonStoppingError ? 503 : 500;
    if (status === 500) this.o.services.logger.error("request failed", { err });
    return this.json({ error: wireError(err) }, status);
  }

  private async route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    if (parts[0] !== "v1") throw new ProtocolError(`unknown path ${url.pathname} (this daemon speaks /v1/)`);
    const [, area, ref, sub] = parts;
    const m = req.method;
    // Any version may ask these two: that is how `banger daemon stop` restarts a daemon of another version.
    if (m === "GET" && area === "health" && !ref) return this.json(this.health());
    if (m === "POST" && area === "shutdown" && !ref) {
      setTimeout(() => this.o.requestStop("asked by a client"), 0);
      return this.json({ pid: process.pid });
    }
    const client = parseVersionTag(req.headers.get(CLIENT_HEADER));
    if (client && !sameVersion(client, this.o.version)) {
      return this.json({ error: { name: "DaemonVersionError", message: versionMismatchMessage(this.o.version, client) } }, 409);
    }
    if (this.stopping) throw new DaemonStoppingError("the daemon is stopping; run the command again to start a new one");
    const images = this.o.services.images;
    if (area === "images") {
      if (m === "GET" && !ref) return this.json(images.list());
      if (m === "POST" && ref === "pull" && !sub) return this.pull(req, url);
      if (m === "GET" && ref && !sub) return this.json(images.show(ref));
      if (m === "DELETE" && ref && !sub) {
        const removed = await images.remove(ref);
        this.o.services.logger.info("image removed", { name: removed.name, id: removed.id });
        return this.json(removed);
      }
      if (m === "GET" && ref && sub === "files") return this.json(images.ls(ref, url.searchParams.get("path") ?? "/"));
    }
    if (area === "operations" && m === "GET" && ref && !sub) {
      return this.json(await this.operations.state(ref, Math.min(30_000, Number(url.searchParams.get("waitMs") ?? 0) || 0)));
    }
    if (area === "cache" && ref === "prune" && m === "POST") return this.json(await this.prune((await req.json()) as PruneParams));
    throw new ProtocolError(`no route for ${m} ${url.pathname}`);
  }

  private health(): HealthInfo {
    return {
      ...this.o.version,
      pid: process.pid,
      socket: this.o.socket,
      startedAt: this.o.startedAt.toISOString(),
      operations: this.operations.count,
      idleExitMs: this.o.idleExitMs,
      log: this.o.services.paths.logPath,
    };
  }

  private async prune(p: PruneParams): Promise<ReturnType<typeof pruneCache>> {
    // Everything goes with --all, blobs of a pull in progress too: not while one runs.
    if (p.all && !p.dryRun && this.operations.count > 0) {
      throw new ImageError(`${this.operations.count} pull(s) running; prune --all once they are done`);
    }
    const reply = await pruneCache(this.o.services.cache, p);
    if (!p.dryRun) this.o.services.logger.info("blob cache pruned", { all: p.all, removed: reply.result.removed.length, freedBytes: reply.result.freedBytes });
    return reply;
  }

  private pull(req: Request, url: URL): Response {
    const params = pullParams(url.searchParams.get("params"));
    const abort = new AbortController();
    const finish = this.operations.begin(params.operation, abort);
    // Logged from here, not from the signal's reason: errors on their way up may reword it.
    let cancelled: string | undefined;
    const hangUp = () => {
      cancelled ??= "the client disconnected";
      abort.abort(new Error(cancelled));
    };
    req.signal.addEventListener("abort", hangUp, { once: true });
    const out = new EventStream(hangUp);
    out.send({ type: "started", operation: params.operation });
    const log = this.o.services.logger;
    const fields = { operation: params.operation, source: params.source, ...(params.name !== undefined && { name: params.name }) };
    log.info("pull started", fields);
    const t0 = performance.now();
    const stdin = readsStdin(params.source) ? (req.body ?? emptyBody()) : undefined;
    const { operation: _, ...request } = params;
    void this.o.services.images
      .pull({ ...request, ...(stdin && { stdin }), signal: abort.signal, progress: (e) => out.event(e) })
      .then(
        (record): Outcome => {
          out.send({ type: "result", record });
          log.info("pull done", { ...fields, name: record.name, id: record.id, ms: Math.round(performance.now() - t0) });
          return { record };
        },
        (err: unknown): Outcome => {
          const error = wireError(err);
          out.send({ type: "error", error });
          const why = abort.signal.aborted ? { cancelled: cancelled ?? (abort.signal.reason instanceof DaemonStoppingError ? "the daemon is stopping" : "aborted") } : {};
          log.warn("pull failed", { ...fields, ...why, error: `${error.name}: ${error.message}`, ms: Math.round(performance.now() - t0) });
          return { error };
        },
      )
      .then((outcome) => {
        req.signal.removeEventListener("abort", hangUp);
        out.close();
        finish(outcome);
        this.collectWhenIdle();
      });
    return new Response(out.body, { headers: { ...this.headers, "content-type": "application/x-ndjson" } });
  }

  /**
   * A full collection once pulls have stopped for a moment. A pull leaves ~100-200 MB of
   * garbage (its tree, its entries, its buffers) that the GC, left to its own pace, took only
   * under the next pull's pressure: six warm Debian pulls one after the other took a daemon
   * from 150 to 384 MB, and it idled at 186-240 MB. Collected here, it idled at 89-103 MB and
   * peaked at 200 MB. The collection takes 20-40 ms; the delay keeps it off the reply that
   * just closed, and a pull that has started by then skips it (its own end collects).
   */
  private collectWhenIdle(): void {
    setTimeout(() => {
      if (this.operations.count === 0 && !this.stopping) Bun.gc(true);
    }, IDLE_COLLECT_MS).unref();
  }
}

/** How long after the last pull ended the daemon collects its garbage (collectWhenIdle). */
const IDLE_COLLECT_MS = 50;

function emptyBody(): AsyncIterable<Uint8Array> {
  return (async function* () {})();
}

/** Checks the shape of a pull's parameters (the client is ours, but the socket is a boundary). */
function pullParams(text: string | null): PullParams {
  let p: unknown;
  try {
    p = JSON.parse(text ?? "");
  } catch {
    throw new ProtocolError("pull: the params query parameter is not JSON");
  }
  const o = p as Record<string, unknown>;
  const bad = (what: string) => new ProtocolError(`pull: ${what}`);
  if (typeof o !== "object" || o === null) throw bad("params must be an object");
  if (typeof o.source !== "string") throw bad("source must be a string");
  if (typeof o.operation !== "string" || !OPERATION_ID.test(o.operation)) throw bad("operation must be 8-64 letters, digits, - or _");
  if (o.name !== undefined && typeof o.name !== "string") throw bad("name must be a string");
  if (o.kernelRef !== undefined && typeof o.kernelRef !== "string") throw bad("kernelRef must be a string");
  if (o.kernelFallbackRef !== undefined && typeof o.kernelFallbackRef !== "string") throw bad("kernelFallbackRef must be a string");
  if (o.cwd !== undefined && (typeof o.cwd !== "string" || !o.cwd.startsWith("/"))) throw bad("cwd must be an absolute path");
  for (const k of ["sizeBytes", "timestamp"] as const) {
    if (o[k] !== undefined && (typeof o[k] !== "number" || !Number.isSafeInteger(o[k]) || (o[k] as number) < 0)) throw bad(`${k} must be a whole number`);
  }
  const pl = o.platform as Record<string, unknown> | undefined;
  if (pl !== undefined && (typeof pl !== "object" || pl === null || typeof pl.os !== "string" || typeof pl.architecture !== "string" || (pl.variant !== undefined && typeof pl.variant !== "string"))) {
    throw bad("platform must be {os, architecture[, variant]}");
  }
  return o as unknown as PullParams;
}

/**
 * A pull's response body: one JSON line per event. Byte counts (a layer downloading, a layer
 * unpacking) are dropped while the client reads slower than they come: the next one carries the
 * newer count, and a state change is never dropped.
 */
export class EventStream {
  readonly body: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private closed = false;
  private readonly layerState = new Map<number, string>();
  private readonly unpacking = new Set<number>();
  private readonly encoder = new TextEncoder();

  constructor(onCancel: () => void) {
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.controller = c;
        },
        cancel: () => {
          this.closed = true;
          onCancel();
        },
      },
      new CountQueuingStrategy({ highWaterMark: 64 }),
    );
  }

  event(e: PullEvent): void {
    const busy = (this.controller.desiredSize ?? 1) <= 0;
    if (e.type === "layer") {
      const same = this.layerState.get(e.index) === e.state;
      this.layerState.set(e.index, e.state);
      if (busy && same) return;
    } else if (e.type === "unpack" && !e.done) {
      if (busy && this.unpacking.has(e.index)) return;
      this.unpacking.add(e.index);
    }
    this.send(e);
  }

  send(line: PullLine): void {
    if (this.closed) return;
    try {
      this.controller.enqueue(this.encoder.encode(JSON.stringify(line) + "\n"));
    } catch {
      this.closed = true; // the client is gone; the abort is on its way
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.controller.close();
    } catch {
      // already cancelled
    }
  }
}
