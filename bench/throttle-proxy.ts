#!/usr/bin/env bun
// A TCP forwarder on 127.0.0.1 that caps the link from the upstream to its clients at a fixed
// rate, for the cold-pull case: every byte the upstream sends, over all connections together,
// goes through one token bucket (one shared link, like a real uplink), handed out in pieces of
// 64 KiB. The other direction (requests, uploads) is not paced.
//   bun bench/throttle-proxy.ts --upstream 127.0.0.1:5000 --rate 50000000
// prints "listening 127.0.0.1:PORT" once it accepts connections, then runs until killed.
//   bun bench/throttle-proxy.ts --check URL [--window-ms 250]
// downloads URL and prints its throughput (overall and per window) as JSON.
import type { Socket } from "bun";

export interface LinkOptions {
  /** Bytes per second. */
  rate: number;
  /** Largest single write (bytes). */
  piece: number;
  /** Bucket depth (bytes): how much a late timer may catch up at once. */
  burst: number;
}

interface Conn {
  client: Socket<ConnRef>;
  upstream: Socket<ConnRef> | null;
  /** Upstream bytes not yet passed to the client. */
  pending: Uint8Array[];
  pendingBytes: number;
  /** Client bytes that arrived before the upstream connection was open. */
  early: Uint8Array[];
  upstreamClosed: boolean;
  clientClosed: boolean;
  /** The client's socket refused part of a write: wait for its drain. */
  blocked: boolean;
  upstreamPaused: boolean;
}

interface ConnRef {
  conn: Conn | null;
}

const HIGH_WATER = 4 << 20;
const LOW_WATER = 1 << 20;

/** One shared link: a token bucket refilled at `rate`, served round-robin over the connections. */
class Link {
  private tokens: number;
  private last = performance.now();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly conns = new Set<Conn>();
  sent = 0;

  constructor(private readonly o: LinkOptions) {
    this.tokens = o.piece;
  }

  add(c: Conn): void {
    this.conns.add(c);
  }

  remove(c: Conn): void {
    this.conns.delete(c);
  }

  /** Nothing was waiting at the last pump: the link sat idle and earns no more than one piece. */
  private idle = true;

  private refill(): void {
    const now = performance.now();
    const cap = this.idle ? this.o.piece : this.o.burst;
    this.tokens = Math.min(cap, this.tokens + ((now - this.last) / 1000) * this.o.rate);
    this.last = now;
    this.idle = false;
  }

  pump = (): void => {
    this.timer = null;
    this.refill();
    let progress = true;
    while (progress && this.tokens >= 1) {
      progress = false;
      for (const c of this.conns) {
        if (c.blocked || c.pendingBytes === 0 || this.tokens < 1) continue;
        const head = c.pending[0]!;
        const n = Math.min(head.length, this.o.piece, Math.floor(this.tokens));
        const wrote = c.client.write(head.subarray(0, n));
        if (wrote > 0) {
          this.tokens -= wrote;
          this.sent += wrote;
          c.pendingBytes -= wrote;
          if (wrote === head.length) c.pending.shift();
          else c.pending[0] = head.subarray(wrote);
          progress = true;
        }
        if (wrote < n) c.blocked = true;
        if (c.upstreamPaused && c.pendingBytes < LOW_WATER && c.upstream) {
          c.upstream.resume();
          c.upstreamPaused = false;
        }
        if (c.pendingBytes === 0 && c.upstreamClosed) c.client.end();
      }
    }
    this.schedule();
  };

  schedule(): void {
    if (this.timer) return;
    let waiting = false;
    for (const c of this.conns) if (!c.blocked && c.pendingBytes > 0) waiting = true;
    if (!waiting) {
      this.idle = true;
      return;
    }
    const need = Math.min(this.o.piece, this.o.burst) - this.tokens;
    const ms = need <= 0 ? 0 : Math.max(1, Math.ceil((need / this.o.rate) * 1000));
    this.timer = setTimeout(this.pump, ms);
  }
}

export interface RunningProxy {
  port: number;
  link: { sent: number };
  stop(): void;
}

export function startThrottleProxy(upstream: { hostname: string; port: number }, o: LinkOptions): RunningProxy {
  const link = new Link(o);
  const server = Bun.listen<ConnRef>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        const c: Conn = { client, upstream: null, pending: [], pendingBytes: 0, early: [], upstreamClosed: false, clientClosed: false, blocked: false, upstreamPaused: false };
        client.data = { conn: c };
        client.setNoDelay(true);
        link.add(c);
        Bun.connect<ConnRef>({
          hostname: upstream.hostname,
          port: upstream.port,
          data: { conn: c },
          socket: {
            open(up) {
              if (c.clientClosed) {
                up.end();
                return;
              }
              c.upstream = up;
              for (const b of c.early) up.write(b);
              c.early = [];
            },
            data(up, chunk) {
              c.pending.push(new Uint8Array(chunk));
              c.pendingBytes += chunk.length;
              if (c.pendingBytes > HIGH_WATER && !c.upstreamPaused) {
                up.pause();
                c.upstreamPaused = true;
              }
              link.schedule();
            },
            close() {
              c.upstreamClosed = true;
              if (c.pendingBytes === 0) c.client.end();
            },
            error() {
              c.upstreamClosed = true;
              if (c.pendingBytes === 0) c.client.end();
            },
          },
        }).catch(() => client.end());
      },
      data(client, chunk) {
        const c = client.data.conn!;
        const copy = new Uint8Array(chunk);
        if (c.upstream) c.upstream.write(copy);
        else c.early.push(copy);
      },
      drain(client) {
        const c = client.data.conn!;
        c.blocked = false;
        link.schedule();
      },
      close(client) {
        const c = client.data.conn!;
        c.clientClosed = true;
        link.remove(c);
        c.upstream?.end();
      },
      error(client) {
        client.end();
      },
    },
  });
  return { port: server.port, link, stop: () => server.stop(true) };
}

export interface RateCheck {
  bytes: number;
  seconds: number;
  /** Overall bytes per second. */
  rate: number;
  /** Bytes per second in each full window after the first. */
  windows: number[];
}

/** Downloads url and measures its throughput, overall and per window (the first window dropped: the bucket starts full). */
export async function checkRate(url: string, windowMs = 250): Promise<RateCheck> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const t0 = performance.now();
  let bytes = 0;
  const perWindow: number[] = [];
  for await (const chunk of res.body) {
    bytes += chunk.length;
    const w = Math.floor((performance.now() - t0) / windowMs);
    while (perWindow.length <= w) perWindow.push(0);
    perWindow[w]! += chunk.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  // The last window is partial.
  const windows = perWindow.slice(1, -1).map((b) => b / (windowMs / 1000));
  return { bytes, seconds, rate: bytes / seconds, windows };
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const check = arg(argv, "--check");
  if (check) {
    const r = await checkRate(check, Number(arg(argv, "--window-ms") ?? 250));
    console.log(JSON.stringify(r));
  } else {
    const up = arg(argv, "--upstream");
    const rate = Number(arg(argv, "--rate") ?? 50e6);
    if (!up || !/^[\w.-]+:\d+$/.test(up) || !(rate > 0)) {
      console.error("usage: throttle-proxy.ts --upstream HOST:PORT --rate BYTES_PER_S | --check URL");
      process.exit(2);
    }
    const [hostname, port] = [up.slice(0, up.lastIndexOf(":")), Number(up.slice(up.lastIndexOf(":") + 1))];
    const piece = Number(arg(argv, "--piece") ?? 65536);
    const p = startThrottleProxy({ hostname, port }, { rate, piece, burst: Number(arg(argv, "--burst") ?? 32 * piece) });
    console.log(`listening 127.0.0.1:${p.port}`);
  }
}
