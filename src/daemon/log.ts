// The daemon's log: one JSON object per line ({"time","level","msg", ...fields}) appended to
// $XDG_STATE_HOME/banger/daemon.log, rotated by size (daemon.log -> daemon.log.1 -> ... up to
// `keep` old files), so a daemon that runs for months holds a bounded amount of it. JSON so
// that `jq` and log shippers read it as it is; `banger daemon logs` prints it for people.
// Services take a Logger; in-process (BANGER_NO_DAEMON=1) it prints the message on stderr.
import fs from "node:fs";

export type LogLevel = "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

abstract class BaseLogger implements Logger {
  protected abstract write(level: LogLevel, msg: string, fields: LogFields | undefined): void;
  info(msg: string, fields?: LogFields): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write("error", msg, fields);
  }
}

/** The message alone, one line each (what a one-shot command prints on stderr). */
export class LineLogger extends BaseLogger {
  constructor(private readonly out: (line: string) => void) {
    super();
  }
  protected write(_level: LogLevel, msg: string): void {
    this.out(msg);
  }
}

export const silentLogger: Logger = new LineLogger(() => {});

export interface JsonLinesLogOptions {
  /** A file grows to about this size before it is rotated (default 10 MiB). */
  maxBytes?: number;
  /** Rotated files kept (daemon.log.1 ... .N; default 3). */
  keep?: number;
  now?: () => Date;
}

export class JsonLinesLogger extends BaseLogger {
  private fd: number;
  private size: number;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly now: () => Date;
  /** Lines that could not be written (a full disk): counted, never thrown at the caller. */
  dropped = 0;

  constructor(
    readonly file: string,
    opts: JsonLinesLogOptions = {},
  ) {
    super();
    this.maxBytes = opts.maxBytes ?? 10 << 20;
    this.keep = Math.max(1, opts.keep ?? 3);
    this.now = opts.now ?? (() => new Date());
    this.fd = fs.openSync(file, "a", 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  protected write(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    // The fixed keys last: a field can never pass itself off as the time or the message.
    const line = JSON.stringify({ ...fields, time: this.now().toISOString(), level, msg }, errorsAsText) + "\n";
    const bytes = Buffer.byteLength(line);
    try {
      if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
      fs.writeSync(this.fd, line);
      this.size += bytes;
    } catch {
      this.dropped++;
    }
  }

  /** daemon.log.(k-1) -> .k, ..., daemon.log -> .1, then a fresh daemon.log. */
  private rotate(): void {
    fs.closeSync(this.fd);
    for (let i = this.keep - 1; i >= 1; i--) {
      try {
        fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
    fs.renameSync(this.file, `${this.file}.1`);
    this.fd = fs.openSync(this.file, "a", 0o600);
    this.size = 0;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Errors in fields become their name and message (JSON.stringify would give {}). */
function errorsAsText(_key: string, value: unknown): unknown {
  return value instanceof Error ? `${value.name}: ${value.message}` : value;
}

/** One log line for people: `TIME LEVEL message key=value ...`; lines that are not JSON as they are. */
export function formatLogLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof o !== "object" || o === null) return line;
  const { time, level, msg, ...fields } = o;
  const rest = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return [String(time ?? ""), String(level ?? "").padEnd(5), String(msg ?? ""), ...rest].join(" ");
}

/**
 * Hands every line of `file` to `onLine`; with `follow`, goes on with the lines appended later,
 * across rotations (a new file under the name is read from its start), until `signal` fires.
 * `lines`: only the last this many of what is there at the start.
 */
export async function readLog(file: string, opts: { follow: boolean; lines?: number; signal?: AbortSignal; pollMs?: number }, onLine: (line: string) => void): Promise<void> {
  let fd: number | null = null;
  let ino = 0;
  let pos = 0;
  let partial = "";
  const open = (): boolean => {
    try {
      fd = fs.openSync(file, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
    ino = fs.fstatSync(fd).ino;
    pos = 0;
    partial = "";
    return true;
  };
  const drain = (emit: (line: string) => void) => {
    if (fd === null) return;
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      pos += n;
      const text = partial + buf.toString("utf8", 0, n);
      const parts = text.split("\n");
      partial = parts.pop()!;
      for (const p of parts) emit(p);
    }
  };
  try {
    if (open()) {
      if (opts.lines === undefined) drain(onLine);
      else {
        const all: string[] = [];
        drain((l) => all.push(l));
        for (const l of all.slice(Math.max(0, all.length - opts.lines))) onLine(l);
      }
    }
    while (opts.follow && !opts.signal?.aborted) {
      await Bun.sleep(opts.pollMs ?? 250);
      drain(onLine);
      // Rotated (or created since): finish the old file above, then read the new one from its start.
      const st = fs.statSync(file, { throwIfNoEntry: false });
      if (st && st.ino !== ino) {
        if (fd !== null) fs.closeSync(fd);
        fd = null;
        if (open()) drain(onLine);
      }
    }
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}
