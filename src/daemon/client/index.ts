// The daemon's client: the image API of protocol.ts over the unix socket. Its own entry point,
// like src/ext4/read: a command that talks to the daemon loads this and protocol.ts, none of
// the services (no sqlite, no registry client, no ext4 writer).
//
// Every request carries the client's version; the daemon answers every request with its own,
// and either side refuses a mismatch with the same message. A pull reads the daemon's stream of
// events; when the caller's signal fires (Ctrl-C) the request is dropped, which makes the daemon
// abort the pull, and the client then asks how the cleanup went (GET /v1/operations/<id>).
import type { BangerPaths } from "../paths.ts";
import {
  CLIENT_HEADER,
  DAEMON_HEADER,
  OWN_VERSION,
  parseVersionTag,
  readsStdin,
  sameVersion,
  versionMismatchMessage,
  versionTag,
  type HealthInfo,
  type ImageApi,
  type ImageDirEntry,
  type ImageRecord,
  type OperationState,
  type PruneParams,
  type PruneReply,
  type PullEvent,
  type PullLine,
  type PullParams,
  type VersionInfo,
  type WireError,
} from "../protocol.ts";

/** Nothing answers on the socket (no daemon, or a stale socket file). */
export class DaemonUnavailableError extends Error {
  override name = "DaemonUnavailableError";
}

/** The CLI and the daemon are different releases (or protocols). */
export class DaemonVersionError extends Error {
  override name = "DaemonVersionError";
  constructor(
    readonly daemon: VersionInfo,
    readonly client: VersionInfo,
  ) {
    super(versionMismatchMessage(daemon, client));
  }
}

/** The daemon broke off (killed mid-pull) or said something this client cannot read. */
export class DaemonProtocolError extends Error {
  override name = "DaemonProtocolError";
}

/** An error the daemon's services raised: their class name and message, as in-process. */
export class RemoteError extends Error {
  constructor(e: WireError) {
    super(e.message);
    this.name = e.name;
  }
}

export interface DaemonClientOptions {
  socket: string;
  /** What this client says it is (tests pose as another release with it). */
  version?: VersionInfo;
  /**
   * Called when nothing answers on the socket; when it resolves (a daemon was started and
   * answers) the request is sent once more. Without it, DaemonUnavailableError.
   */
  onUnavailable?: () => Promise<void>;
  /** After an interrupt, how long to wait for the daemon to report its cleanup (default 5 s). */
  abortGraceMs?: number;
}

const UNAVAILABLE = new Set(["ENOENT", "ECONNREFUSED"]);

function isUnavailable(err: unknown): boolean {
  return UNAVAILABLE.has((err as { code?: string } | null)?.code ?? "");
}

const GONE = "the banger daemon closed the connection before the pull ended (killed?); `banger daemon logs` may say why";

function operationId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(12))).toString("base64url");
}

async function* ndjson(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of body) {
    buf += dec.decode(chunk, { stream: true });
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  buf += dec.decode();
  if (buf) yield buf;
}

interface SendOptions {
  body?: string | ReadableStream<Uint8Array>;
  signal?: AbortSignal;
  /** No version check (health and shutdown: any version may ask). */
  anyVersion?: boolean;
  /** Bun's idle timeout for the request; false for a pull's stream, which may be quiet for long. */
  timeout?: number | false;
}

export class DaemonClient implements ImageApi {
  readonly socket: string;
  private readonly version: VersionInfo;
  private readonly onUnavailable: (() => Promise<void>) | undefined;
  private readonly abortGraceMs: number;

  constructor(o: DaemonClientOptions) {
    this.socket = o.socket;
    this.version = o.version ?? OWN_VERSION;
    this.onUnavailable = o.onUnavailable;
    this.abortGraceMs = o.abortGraceMs ?? 5000;
  }

  private async send(method: string, route: string, o: SendOptions = {}): Promise<Response> {
    const init = {
      method,
      unix: this.socket,
      headers: { [CLIENT_HEADER]: versionTag(this.version) },
      body: o.body,
      signal: o.signal,
      ...(o.timeout !== undefined && { timeout: o.timeout }),
      // A streamed body (a rootfs tar on stdin) goes out while the answer comes in.
      ...(o.body instanceof ReadableStream && { duplex: "half" }),
    } as RequestInit;
    let res: Response;
    try {
      res = await fetch(`http://banger${route}`, init);
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      if (!this.onUnavailable) throw new DaemonUnavailableError(`no banger daemon answers on ${this.socket}`, { cause: err });
      await this.onUnavailable();
      try {
        res = await fetch(`http://banger${route}`, init);
      } catch (again) {
        if (isUnavailable(again)) throw new DaemonUnavailableError(`no banger daemon answers on ${this.socket}, even after starting one`, { cause: again });
        throw again;
      }
    }
    // A daemon that has just decided to stop (idle) answers 503 until its socket is gone:
    // wait for that, start a new one, and ask it (a streamed body cannot be sent twice).
    if (res.status === 503 && this.onUnavailable && !(o.body instanceof ReadableStream)) {
      const stopping = ((await res.clone().json()) as { error?: WireError }).error?.name === "DaemonStoppingError";
      if (stopping) {
        await this.gone();
        await this.onUnavailable();
        res = await fetch(`http://banger${route}`, init);
      }
    }
    if (!o.anyVersion) {
      const daemon = parseVersionTag(res.headers.get(DAEMON_HEADER));
      if (!daemon) throw new DaemonProtocolError(`what answers on ${this.socket} is not a banger daemon (no ${DAEMON_HEADER} header)`);
      if (!sameVersion(daemon, this.version)) {
        await res.body?.cancel();
        throw new DaemonVersionError(daemon, this.version);
      }
    }
    return res;
  }

  /** Resolves once nothing answers on the socket any more (at most 20 s). */
  private async gone(): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      try {
        await (await fetch("http://banger/v1/health", { unix: this.socket } as RequestInit)).arrayBuffer();
      } catch (err) {
        if (isUnavailable(err)) return;
      }
      await Bun.sleep(25);
    }
  }

  private async json<T>(method: string, route: string, o: SendOptions = {}): Promise<T> {
    const res = await this.send(method, route, o);
    const body = (await res.json()) as { error?: WireError };
    if (!res.ok) throw new RemoteError(body.error ?? { name: "DaemonProtocolError", message: `the daemon answered ${method} ${route} with HTTP ${res.status}` });
    return body as T;
  }

  /** Who the daemon is; `timeoutMs`: give up after that long (a daemon that hangs is as good as none). */
  health(timeoutMs?: number): Promise<HealthInfo> {
    return this.json<HealthInfo>("GET", "/v1/health", { anyVersion: true, ...(timeoutMs !== undefined && { signal: AbortSignal.timeout(timeoutMs) }) });
  }

  /** Asks the daemon to stop (any version); resolves with its pid once it has agreed. */
  shutdown(): Promise<{ pid: number }> {
    return this.json<{ pid: number }>("POST", "/v1/shutdown", { anyVersion: true });
  }

  list(): Promise<ImageRecord[]> {
    return this.json("GET", "/v1/images");
  }

  show(ref: string): Promise<ImageRecord> {
    return this.json("GET", `/v1/images/${encodeURIComponent(ref)}`);
  }

  remove(ref: string): Promise<ImageRecord> {
    return this.json("DELETE", `/v1/images/${encodeURIComponent(ref)}`);
  }

  ls(ref: string, dirPath: string): Promise<ImageDirEntry[]> {
    return this.json("GET", `/v1/images/${encodeURIComponent(ref)}/files?path=${encodeURIComponent(dirPath)}`);
  }

  prune(params: PruneParams): Promise<PruneReply> {
    return this.json("POST", "/v1/cache/prune", { body: JSON.stringify(params) });
  }

  operation(id: string, waitMs: number): Promise<OperationState> {
    return this.json("GET", `/v1/operations/${encodeURIComponent(id)}?waitMs=${Math.max(0, Math.round(waitMs))}`);
  }

  async pull(params: Omit<PullParams, "operation">, opts: { signal?: AbortSignal; progress?: (e: PullEvent) => void; stdin?: ReadableStream<Uint8Array> } = {}): Promise<ImageRecord> {
    const operation = operationId();
    const query = encodeURIComponent(JSON.stringify({ ...params, operation } satisfies PullParams));
    const stdin = readsStdin(params.source) ? opts.stdin : undefined;
    // Standard input can be sent once: the daemon must be up before the request goes.
    if (stdin) await this.health();
    try {
      const res = await this.send("POST", `/v1/images/pull?params=${query}`, { body: stdin, signal: opts.signal, timeout: false });
      if (!res.ok) throw new RemoteError(((await res.json()) as { error: WireError }).error);
      for await (const text of ndjson(res.body!)) {
        const line = JSON.parse(text) as PullLine;
        if (line.type === "result") return line.record;
        if (line.type === "error") throw new RemoteError(line.error);
        if (line.type !== "started") opts.progress?.(line);
      }
      throw new DaemonProtocolError(GONE);
    } catch (err) {
      // Our own hang-up: how the daemon's cleanup went is the answer. (An error line that came
      // first is the answer already.)
      if (opts.signal?.aborted && !(err instanceof RemoteError)) return this.afterInterrupt(operation, params.source);
      if ((err as { code?: string }).code === "ECONNRESET") throw new DaemonProtocolError(GONE, { cause: err });
      throw err;
    }
  }

  /**
   * We hung up on purpose (the caller's signal): the daemon aborts the pull. Its outcome says
   * how that went (the interrupted pull's own error, "nothing was kept"), within the grace time.
   */
  private async afterInterrupt(operation: string, source: string): Promise<ImageRecord> {
    const deadline = Date.now() + this.abortGraceMs;
    let seen = false;
    while (Date.now() < deadline) {
      let st: OperationState;
      try {
        st = await this.operation(operation, deadline - Date.now());
      } catch {
        break; // the daemon is gone too: nothing more to learn
      }
      if (st.state === "finished") {
        if (st.error) throw new RemoteError(st.error);
        // It had published just before the interrupt reached it: the image exists.
        return st.record!;
      }
      seen ||= st.state === "running";
      // Unknown: the request may still be on its way in; a moment, then ask again.
      if (st.state === "unknown") {
        if (!seen && Date.now() > deadline - this.abortGraceMs + 1000) break;
        await Bun.sleep(25);
      }
    }
    const what = seen ? "the daemon did not confirm its cleanup in time (it goes on in the background)" : "the daemon had not started it; nothing was kept";
    throw new RemoteError({ name: "ImagePullAbortedError", message: `pull of ${source} interrupted; ${what}` });
  }
}

/** What `banger doctor` (and `banger daemon status`) show of the daemon. */
export interface DaemonHealth {
  running: boolean;
  /** The daemon's package version (null when none answers). */
  version: string | null;
  protocol: number | null;
  pid: number | null;
  socket: string;
  /** Why it is not running, or why its answer could not be read. */
  problem?: string;
}

/** Asks the daemon on `paths.socketPath` who it is; never starts one, never throws. */
export async function daemonHealth(paths: Pick<BangerPaths, "socketPath">, opts: { timeoutMs?: number } = {}): Promise<DaemonHealth> {
  const socket = paths.socketPath;
  try {
    const h = await new DaemonClient({ socket }).health(opts.timeoutMs ?? 2000);
    return { running: true, version: h.version, protocol: h.protocol, pid: h.pid, socket };
  } catch (err) {
    const problem = err instanceof DaemonUnavailableError ? "no daemon answers on the socket" : err instanceof Error ? err.message : String(err);
    return { running: false, version: null, protocol: null, pid: null, socket, problem };
  }
}

// What a command needs besides the client, from this same light entry point.
// What every command talking to the daemon needs. The daemon's lock (io/flock.ts,
// ../runtime-dir.ts) and log (../log.ts) are for `banger daemon status|logs` and for starting a
// daemon: those import them themselves, so that the rest load no node:fs.
export { bangerPaths, type BangerPaths } from "../paths.ts";
export { OWN_VERSION, describeVersion, type HealthInfo, type ImageApi, type PruneReply, type VersionInfo } from "../protocol.ts";
export { pidAlive } from "../../io/process.ts";
