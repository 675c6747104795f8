// Host side of the guest agent's vsock channel.
//
// Firecracker exposes a guest's vsock device as a unix socket on the host. A host process
// connects to it, writes `CONNECT <port>\n`, and gets `OK <host_port>\n` once the guest has
// accepted on that port; from then on the stream is the guest's. (When nothing listens on the
// port, Firecracker closes the connection instead of answering.)
//
// The agent (assets/guest/usr/local/bin/banger-vsock-agent) speaks one line per request and one
// line per reply, in order, so requests here are queued and answered first in, first out.
import { connect, type Socket } from "node:net";

/** The port banger's guest agent listens on (banger-vsock-agent.socket, banger-init's socat). */
export const AGENT_PORT = 1024;

const DEFAULT_TIMEOUT_MS = 5_000;
// A reply longer than this is not the agent talking: stop buffering rather than grow forever.
const MAX_LINE_BYTES = 64 * 1024;

export interface VsockOptions {
  /** Limit for connecting plus the CONNECT handshake, and the default for each request (ms). */
  timeoutMs?: number;
}

export type GuestInit = "systemd" | "banger-init";

/** The agent's reply to STATUS. */
export interface GuestStatus {
  /** Seconds since the guest kernel booted. */
  uptime: number;
  init: GuestInit;
  firstBoot: "pending" | "done";
  sshd: "running" | "stopped" | "absent";
}

/** Any failure on a vsock connection; the message names the unix socket. */
export class VsockError extends Error {
  constructor(
    message: string,
    readonly socketPath: string,
  ) {
    super(message);
    this.name = "VsockError";
  }
}

interface Waiter {
  resolve: (line: string) => void;
  reject: (err: Error) => void;
}

/** Splits a socket's bytes into lines and hands them to waiting readers in order. */
class LineReader {
  private buffered: Buffer = Buffer.alloc(0);
  private lines: string[] = [];
  private waiters: Waiter[] = [];
  private failure: Error | null = null;

  push(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (let nl = this.buffered.indexOf(0x0a); nl !== -1; nl = this.buffered.indexOf(0x0a)) {
      let line = this.buffered.subarray(0, nl).toString("utf8");
      if (line.endsWith("\r")) line = line.slice(0, -1);
      this.buffered = this.buffered.subarray(nl + 1);
      const w = this.waiters.shift();
      if (w) w.resolve(line);
      else this.lines.push(line);
    }
    if (this.buffered.length > MAX_LINE_BYTES) {
      this.fail(new Error(`a line longer than ${MAX_LINE_BYTES} bytes`));
    }
  }

  /** Every pending and later read rejects with `err` (the first failure wins). */
  fail(err: Error): void {
    if (this.failure === null) this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }

  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

/** Rejects with `onTimeout()` when `p` has not settled within `ms`. */
function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

function checkTimeout(ms: number): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`timeoutMs must be a positive number, got ${ms}`);
  return ms;
}

/** One connection to a guest port through the VMM's vsock unix socket. */
export class VsockConnection {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly reader: LineReader,
    readonly socketPath: string,
    readonly port: number,
    /** The host-side port the VMM reported in its `OK` reply. */
    readonly hostPort: number,
    private readonly timeoutMs: number,
  ) {}

  /** Connects to `socketPath` and asks for guest `port`; resolves once the VMM said OK. */
  static async open(socketPath: string, port: number = AGENT_PORT, opts: VsockOptions = {}): Promise<VsockConnection> {
    if (!Number.isInteger(port) || port < 0 || port > 0xffff_ffff) throw new RangeError(`vsock port must be a 32-bit unsigned integer, got ${port}`);
    const timeoutMs = checkTimeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const reader = new LineReader();
    const socket = connect({ path: socketPath });
    let socketError: Error | null = null;
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    socket.on("error", (err: Error) => {
      socketError = err;
      reader.fail(new VsockError(`vsock ${socketPath}: ${err.message}`, socketPath));
    });
    socket.on("close", () => reader.fail(new VsockError(`vsock ${socketPath}: connection closed`, socketPath)));

    const handshake = (async (): Promise<number> => {
      await new Promise<void>((resolve, reject) => {
        const refused = (err: Error): void =>
          reject(new VsockError(`vsock: cannot connect to the VMM's unix socket ${socketPath}: ${err.message}`, socketPath));
        socket.once("error", refused);
        socket.once("connect", () => {
          socket.off("error", refused);
          resolve();
        });
      });
      socket.write(`CONNECT ${port}\n`);
      let reply: string;
      try {
        reply = await reader.next();
      } catch (err) {
        // Firecracker's way of saying "nothing listens there": close without a word.
        if (socketError === null) {
          throw new VsockError(
            `vsock ${socketPath}: the VMM closed the connection without answering CONNECT ${port} (is the guest listening on port ${port}?)`,
            socketPath,
          );
        }
        throw err;
      }
      const m = /^OK (\d+)$/.exec(reply);
      if (!m) throw new VsockError(`vsock ${socketPath}: CONNECT ${port} refused: the VMM replied ${JSON.stringify(reply)}`, socketPath);
      return Number(m[1]);
    })();

    try {
      const hostPort = await withTimeout(
        handshake,
        timeoutMs,
        () => new VsockError(`vsock ${socketPath}: no reply to CONNECT ${port} within ${timeoutMs} ms`, socketPath),
      );
      return new VsockConnection(socket, reader, socketPath, port, hostPort, timeoutMs);
    } catch (err) {
      handshake.catch(() => {}); // settled by the destroy below; its reason is already reported
      socket.destroy();
      throw err;
    }
  }

  /**
   * Sends one request line and resolves with the reply line. Requests are answered in order.
   * A timeout closes the connection: a late reply would otherwise answer the next request.
   */
  request(line: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    if (/[\r\n]/.test(line)) return Promise.reject(new RangeError("a vsock request is one line: no CR or LF inside"));
    const timeoutMs = checkTimeout(opts.timeoutMs ?? this.timeoutMs);
    const run = async (): Promise<string> => {
      if (this.closed) throw new VsockError(`vsock ${this.socketPath}: connection closed`, this.socketPath);
      this.socket.write(`${line}\n`);
      try {
        return await withTimeout(
          this.reader.next(),
          timeoutMs,
          () => new VsockError(`vsock ${this.socketPath}: no reply to ${JSON.stringify(line)} on port ${this.port} within ${timeoutMs} ms`, this.socketPath),
        );
      } catch (err) {
        this.close();
        throw err;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return result;
  }

  /** True when the agent answers PING with PONG, false for any other reply. */
  async ping(opts: { timeoutMs?: number } = {}): Promise<boolean> {
    return (await this.request("PING", opts)) === "PONG";
  }

  /** The agent's STATUS, checked field by field. */
  async status(opts: { timeoutMs?: number } = {}): Promise<GuestStatus> {
    const reply = await this.request("STATUS", opts);
    const bad = (why: string): VsockError => new VsockError(`vsock ${this.socketPath}: STATUS reply ${JSON.stringify(reply)}: ${why}`, this.socketPath);
    let parsed: unknown;
    try {
      parsed = JSON.parse(reply);
    } catch {
      throw bad("not JSON");
    }
    if (typeof parsed !== "object" || parsed === null) throw bad("not a JSON object");
    const o = parsed as Record<string, unknown>;
    if (typeof o.uptime !== "number" || !Number.isFinite(o.uptime)) throw bad("uptime is not a number");
    if (o.init !== "systemd" && o.init !== "banger-init") throw bad("unknown init");
    if (o.firstBoot !== "pending" && o.firstBoot !== "done") throw bad("unknown firstBoot");
    if (o.sshd !== "running" && o.sshd !== "stopped" && o.sshd !== "absent") throw bad("unknown sshd state");
    return { uptime: o.uptime, init: o.init, firstBoot: o.firstBoot, sshd: o.sshd };
  }

  /** Closes the connection; pending requests fail. Safe to call more than once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.fail(new VsockError(`vsock ${this.socketPath}: connection closed`, this.socketPath));
    this.socket.destroy();
  }
}

/** Opens a connection to guest `port` (default: the agent's) through the VMM's vsock socket. */
export function connectVsock(socketPath: string, port: number = AGENT_PORT, opts: VsockOptions = {}): Promise<VsockConnection> {
  return VsockConnection.open(socketPath, port, opts);
}
