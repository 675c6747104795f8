// Rendering a pull's progress (PullEvent) on stderr:
//   tty:   one line per layer (bar, bytes, rate, ETA while downloading; then unpacking), then
//          one line per phase, redrawn in place at most 10 times a second
//   plain: one line per step, for logs and pipes (no byte counts streaming by)
//   quiet: nothing
// Kept self-contained (no terminal library): it needs cursor-up and erase-line, nothing more.
import type { PullEvent, PullPhase } from "../daemon/events.ts";

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface PullRenderer {
  event(e: PullEvent): void;
  /** Final redraw; call once, on success or failure, before printing anything else. */
  done(): void;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

const shortDigest = (d: string) => d.replace(/^sha256:/, "").slice(0, 12);

interface LayerState {
  digest: string;
  total: number;
  done: number;
  state: "waiting" | "cached" | "downloading" | "resuming" | "retrying" | "done";
  reason?: string;
  /** When and at which byte count this run's download started: the rate counts only what we fetched. */
  startedAt?: number;
  startBytes?: number;
  finishedAt?: number;
  unpacked?: number;
  unpackDone?: boolean;
}

interface PhaseState {
  phase: PullPhase;
  detail?: string;
  startedAt: number;
  endedAt?: number;
}

/** The pull as the renderers see it, built from events alone. */
class PullState {
  layers: LayerState[] = [];
  layerCount: number | undefined;
  phases: PhaseState[] = [];
  warnings: string[] = [];

  constructor(private readonly now: () => number) {}

  layer(i: number, digest = ""): LayerState {
    while (this.layers.length <= i) this.layers.push({ digest: "", total: 0, done: 0, state: "waiting" });
    const l = this.layers[i]!;
    if (digest) l.digest = digest;
    return l;
  }

  label(i: number): string {
    return `layer ${i + 1}${this.layerCount ? `/${this.layerCount}` : ""}`;
  }

  /** Applies the event; returns what changed, for the renderer to decide how urgent a redraw is. */
  apply(e: PullEvent): "state" | "bytes" {
    const t = this.now();
    switch (e.type) {
      case "resolved":
        this.layerCount = e.layers.length;
        e.layers.forEach((l, i) => {
          const s = this.layer(i, l.digest);
          s.total = l.size;
        });
        return "state";
      case "layer": {
        const l = this.layer(e.index, e.digest);
        l.total = e.bytesTotal;
        l.done = e.bytesDone;
        const changed = l.state !== e.state;
        if ((e.state === "downloading" || e.state === "resuming") && l.startedAt === undefined) {
          l.startedAt = t;
          l.startBytes = e.bytesDone;
        }
        if (e.state === "done" && changed) l.finishedAt = t;
        l.state = e.state;
        l.reason = e.reason;
        return changed ? "state" : "bytes";
      }
      case "phase": {
        const last = this.phases.at(-1);
        if (last && last.endedAt === undefined) last.endedAt = t;
        this.phases.push({ phase: e.phase, detail: e.detail, startedAt: t });
        return "state";
      }
      case "unpack": {
        const l = this.layer(e.index);
        const changed = e.done !== !!l.unpackDone || l.unpacked === undefined;
        l.unpacked = e.bytes;
        l.unpackDone = e.done;
        return changed ? "state" : "bytes";
      }
      case "warning":
        this.warnings.push(e.message);
        return "state";
    }
  }

  finish(): void {
    const last = this.phases.at(-1);
    if (last && last.endedAt === undefined) last.endedAt = this.now();
  }
}

/** Nothing but warnings (on stderr: they matter even with --quiet). */
export class QuietRenderer implements PullRenderer {
  event(e: PullEvent): void {
    if (e.type === "warning") process.stderr.write(`warning: ${e.message}\n`);
  }
  done(): void {}
}

/** One line per step: what a log file or CI output wants. */
export class PlainRenderer implements PullRenderer {
  private readonly state: PullState;

  constructor(
    private readonly out: ProgressStream,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.state = new PullState(now);
  }

  private line(s: string): void {
    this.out.write(s + "\n");
  }

  event(e: PullEvent): void {
    const before = e.type === "layer" ? this.state.layer(e.index).state : undefined;
    this.state.apply(e);
    switch (e.type) {
      case "resolved": {
        const total = e.layers.reduce((n, l) => n + l.size, 0);
        this.line(`resolved ${e.source}: ${e.platform.os}/${e.platform.architecture}${e.platform.variant ? "/" + e.platform.variant : ""}, ${e.layers.length} layer${e.layers.length === 1 ? "" : "s"}, ${formatBytes(total)}, manifest ${shortDigest(e.manifestDigest)}`);
        return;
      }
      case "layer": {
        if (before === e.state) return;
        const l = this.state.layer(e.index);
        const head = `${this.state.label(e.index)} ${shortDigest(e.digest)}`;
        if (e.state === "cached") this.line(`${head} cached (${formatBytes(e.bytesTotal)})`);
        else if (e.state === "downloading") this.line(`${head} downloading (${formatBytes(e.bytesTotal)})`);
        else if (e.state === "resuming") this.line(`${head} resuming at ${formatBytes(e.bytesDone)} of ${formatBytes(e.bytesTotal)}`);
        else if (e.state === "retrying") this.line(`${head} retrying${e.reason ? `: ${e.reason}` : ""}`);
        else if (e.state === "done") {
          const secs = l.startedAt !== undefined ? ` in ${((this.now() - l.startedAt) / 1000).toFixed(1)} s` : "";
          this.line(`${head} downloaded (${formatBytes(e.bytesTotal)}${secs})`);
        }
        return;
      }
      case "phase":
        this.line(`${e.phase}${e.detail ? `: ${e.detail}` : ""}`);
        return;
      case "unpack":
        if (e.done) this.line(`${this.state.label(e.index)} unpacked (${formatBytes(e.bytes)})`);
        return;
      case "warning":
        this.line(`warning: ${e.message}`);
        return;
    }
  }

  done(): void {}
}

const REDRAW_MS = 100;
const BAR = 24;

/** Bars redrawn in place: the whole block is rewritten each time and never shrinks, so cursor-up by the count drawn last time is exact. */
export class TtyRenderer implements PullRenderer {
  private readonly state: PullState;
  private drawn = 0;
  private lastDraw = -Infinity;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private finished = false;

  constructor(
    private readonly out: ProgressStream,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.state = new PullState(now);
  }

  event(e: PullEvent): void {
    if (this.finished) return;
    const change = this.state.apply(e);
    const t = this.now();
    if (change === "state" || t - this.lastDraw >= REDRAW_MS) {
      this.draw();
      return;
    }
    // A byte count inside the 100 ms window: draw it when the window ends, unless something else does first.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      if (!this.finished) this.draw();
    }, REDRAW_MS - (t - this.lastDraw));
    this.timer.unref?.();
  }

  done(): void {
    if (this.finished) return;
    this.state.finish();
    this.draw();
    this.finished = true;
  }

  private layerLine(i: number): string {
    const l = this.state.layers[i]!;
    const head = `${this.state.label(i).padEnd(10)} ${shortDigest(l.digest).padEnd(12)}`;
    if (l.unpacked !== undefined) return `${head} ${l.unpackDone ? "unpacked " : "unpacking"} ${formatBytes(l.unpacked)}`;
    switch (l.state) {
      case "waiting":
        return `${head} waiting   ${formatBytes(l.total)}`;
      case "cached":
        return `${head} cached    ${formatBytes(l.total)}`;
      case "done": {
        const secs = l.startedAt !== undefined && l.finishedAt !== undefined ? ` in ${((l.finishedAt - l.startedAt) / 1000).toFixed(1)} s` : "";
        return `${head} done      ${formatBytes(l.total)}${secs}`;
      }
      default: {
        const frac = l.total > 0 ? Math.min(1, l.done / l.total) : 0;
        const fill = Math.round(frac * BAR);
        let line = `${head} [${"#".repeat(fill)}${"-".repeat(BAR - fill)}] ${formatBytes(l.done)} / ${formatBytes(l.total)}`;
        const elapsed = l.startedAt !== undefined ? (this.now() - l.startedAt) / 1000 : 0;
        const got = l.done - (l.startBytes ?? 0);
        // Under half a second the rate is noise (and the first sample has none).
        if (elapsed >= 0.5 && got > 0) {
          const rate = got / elapsed;
          line += `  ${formatBytes(rate)}/s  ETA ${formatDuration((l.total - l.done) / rate)}`;
        }
        if (l.state === "retrying") line += `  retrying${l.reason ? `: ${l.reason}` : ""}`;
        return line;
      }
    }
  }

  private lines(): string[] {
    const out = this.state.layers.map((_, i) => this.layerLine(i));
    const t = this.now();
    for (const [i, p] of this.state.phases.entries()) {
      const current = i === this.state.phases.length - 1 && p.endedAt === undefined;
      const secs = (((p.endedAt ?? t) - p.startedAt) / 1000).toFixed(1);
      out.push(`${current ? "->" : "  "} ${p.phase}${p.detail ? `: ${p.detail}` : ""} (${secs} s)`);
    }
    for (const w of this.state.warnings) out.push(`warning: ${w}`);
    return out;
  }

  private draw(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.lastDraw = this.now();
    // A line wider than the terminal wraps, and cursor-up would then land on the wrong row.
    const width = Math.max(20, (this.out.columns ?? 80) - 1);
    const lines = this.lines();
    let s = this.drawn ? `\x1b[${this.drawn}A` : "";
    for (const l of lines) s += `\r\x1b[2K${l.length > width ? l.slice(0, width - 1) + "…" : l}\n`;
    this.drawn = lines.length;
    this.out.write(s);
  }
}

/**
 * `stream` is asked for only when something will be drawn: Bun builds process.stderr on first
 * use, loading node:stream (~4 ms of a quiet pull's start-up, for nothing).
 */
export function pickRenderer(opts: { quiet?: boolean; stream: () => ProgressStream }): PullRenderer {
  if (opts.quiet) return new QuietRenderer();
  const stream = opts.stream();
  return stream.isTTY ? new TtyRenderer(stream) : new PlainRenderer(stream);
}
