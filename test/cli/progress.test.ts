// The pull progress renderers against a scripted event sequence and a scripted clock.
import { expect, test } from "bun:test";
import { PlainRenderer, QuietRenderer, TtyRenderer, formatBytes, pickRenderer, type ProgressStream } from "../../src/cli/progress.ts";
import type { PullEvent } from "../../src/daemon/events.ts";

const D1 = "sha256:" + "1".repeat(64);
const D2 = "sha256:" + "2".repeat(64);
const MiB = 1048576;

/** [ms, event]: the clock is set to ms before the event is handed over. */
const SCRIPT: [number, PullEvent][] = [
  [0, { type: "phase", phase: "resolve", detail: "docker.io/library/debian:bookworm" }],
  [200, { type: "resolved", source: "docker.io/library/debian:bookworm", manifestDigest: "sha256:" + "a".repeat(64), platform: { os: "linux", architecture: "amd64" }, layers: [{ digest: D1, size: 10 * MiB }, { digest: D2, size: 2 * MiB }] }],
  [210, { type: "layer", index: 1, digest: D2, bytesDone: 2 * MiB, bytesTotal: 2 * MiB, state: "cached" }],
  [220, { type: "layer", index: 0, digest: D1, bytesDone: 0, bytesTotal: 10 * MiB, state: "downloading" }],
  [250, { type: "layer", index: 0, digest: D1, bytesDone: 1 * MiB, bytesTotal: 10 * MiB, state: "downloading" }],
  [1220, { type: "layer", index: 0, digest: D1, bytesDone: 5 * MiB, bytesTotal: 10 * MiB, state: "downloading" }],
  [1260, { type: "layer", index: 0, digest: D1, bytesDone: 6 * MiB, bytesTotal: 10 * MiB, state: "downloading" }],
  [2220, { type: "layer", index: 0, digest: D1, bytesDone: 10 * MiB, bytesTotal: 10 * MiB, state: "done" }],
  [2300, { type: "phase", phase: "unpack", detail: "2 layers" }],
  [2400, { type: "unpack", index: 0, bytes: 20 * MiB, done: false }],
  [2900, { type: "unpack", index: 0, bytes: 30 * MiB, done: true }],
  [3000, { type: "unpack", index: 1, bytes: 4 * MiB, done: true }],
  [3100, { type: "phase", phase: "write", detail: "1.0 GiB image" }],
  [3600, { type: "phase", phase: "publish", detail: "debian-bookworm" }],
];

function capture(isTTY: boolean, columns = 120): ProgressStream & { chunks: string[] } {
  const chunks: string[] = [];
  return { isTTY, columns, chunks, write: (s: string) => void chunks.push(s) };
}

function play(make: (out: ProgressStream, now: () => number) => { event(e: PullEvent): void; done(): void }, out: ProgressStream): number {
  let t = 0;
  const r = make(out, () => t);
  for (const [ms, e] of SCRIPT) {
    t = ms;
    r.event(e);
  }
  t = 3700;
  r.done();
  return t;
}

test("plain renderer: one line per step, no byte-by-byte lines", () => {
  const out = capture(false);
  play((o, now) => new PlainRenderer(o, now), out);
  expect(out.chunks.join("")).toBe(
    [
      "resolve: docker.io/library/debian:bookworm",
      "resolved docker.io/library/debian:bookworm: linux/amd64, 2 layers, 12.0 MiB, manifest aaaaaaaaaaaa",
      "layer 2/2 222222222222 cached (2.0 MiB)",
      "layer 1/2 111111111111 downloading (10.0 MiB)",
      "layer 1/2 111111111111 downloaded (10.0 MiB in 2.0 s)",
      "unpack: 2 layers",
      "layer 1/2 unpacked (30.0 MiB)",
      "layer 2/2 unpacked (4.0 MiB)",
      "write: 1.0 GiB image",
      "publish: debian-bookworm",
      "",
    ].join("\n"),
  );
});

/** What a terminal shows after the TTY renderer's output: applies \r, ESC[2K and ESC[nA. */
function screen(chunks: string[]): string[] {
  const rows: string[] = [];
  let row = 0;
  const text = chunks.join("");
  for (let i = 0; i < text.length; ) {
    const up = /^\x1b\[(\d+)A/.exec(text.slice(i, i + 8));
    if (up) {
      row -= Number(up[1]);
      i += up[0].length;
    } else if (text.startsWith("\x1b[2K", i)) {
      rows[row] = "";
      i += 4;
    } else if (text[i] === "\r") i++;
    else if (text[i] === "\n") {
      row++;
      i++;
    } else {
      rows[row] = (rows[row] ?? "") + text[i];
      i++;
    }
  }
  return rows;
}

test("TTY renderer: bars with bytes, rate and ETA redrawn in place, then phases; final screen", () => {
  const out = capture(true);
  let t = 0;
  const r = new TtyRenderer(out, () => t);
  let mid: string[] = [];
  for (const [ms, e] of SCRIPT) {
    t = ms;
    r.event(e);
    if (ms === 1260) mid = screen(out.chunks);
  }
  // Mid-download (the 1220 ms event drew; 1260 ms is inside the 100 ms window, so still 5 MiB).
  expect(mid[0]).toBe("layer 1/2  111111111111 [############------------] 5.0 MiB / 10.0 MiB  5.0 MiB/s  ETA 0:01");
  expect(mid[1]).toBe("layer 2/2  222222222222 cached    2.0 MiB");
  expect(mid[2]).toBe("-> resolve: docker.io/library/debian:bookworm (1.2 s)");
  t = 3700;
  r.done();
  expect(screen(out.chunks)).toEqual([
    "layer 1/2  111111111111 unpacked  30.0 MiB",
    "layer 2/2  222222222222 unpacked  4.0 MiB",
    "   resolve: docker.io/library/debian:bookworm (2.3 s)",
    "   unpack: 2 layers (0.8 s)",
    "   write: 1.0 GiB image (0.5 s)",
    "   publish: debian-bookworm (0.1 s)",
  ]);
  // Every redraw starts by going up over the previous block, never more rows than drawn.
  expect(out.chunks[0]!.startsWith("\x1b[")).toBe(false);
  expect(out.chunks.slice(1).every((c) => /^\x1b\[\d+A/.test(c))).toBe(true);
});

test("TTY renderer: byte updates inside 100 ms are coalesced; state changes draw at once", async () => {
  const out = capture(true);
  let t = 0;
  const r = new TtyRenderer(out, () => t);
  r.event({ type: "layer", index: 0, digest: D1, bytesDone: 0, bytesTotal: 100, state: "downloading" });
  const n = out.chunks.length;
  for (let i = 1; i <= 9; i++) {
    t = i * 5;
    r.event({ type: "layer", index: 0, digest: D1, bytesDone: i, bytesTotal: 100, state: "downloading" });
  }
  expect(out.chunks.length).toBe(n);
  t = 50;
  r.event({ type: "layer", index: 0, digest: D1, bytesDone: 100, bytesTotal: 100, state: "done" });
  expect(out.chunks.length).toBe(n + 1);
  t = 60;
  r.event({ type: "layer", index: 0, digest: D1, bytesDone: 100, bytesTotal: 100, state: "done" });
  // The trailing redraw of a coalesced update comes by itself once the window ends.
  await Bun.sleep(150);
  expect(out.chunks.length).toBe(n + 2);
  r.done();
  r.event({ type: "phase", phase: "write" });
  expect(out.chunks.length).toBe(n + 3);
});

test("TTY renderer: lines are cut to the terminal width so redraws stay aligned", () => {
  const out = capture(true, 40);
  const r = new TtyRenderer(out, () => 0);
  r.event({ type: "phase", phase: "resolve", detail: "x".repeat(100) });
  r.done();
  expect(screen(out.chunks)[0]!.length).toBe(39);
  expect(screen(out.chunks)[0]!.endsWith("…")).toBe(true);
});

test("pickRenderer: quiet, TTY and plain", () => {
  // A quiet pull never asks for the stream (building process.stderr loads node:stream).
  expect(pickRenderer({ quiet: true, stream: () => expect.unreachable("stream asked for") })).toBeInstanceOf(QuietRenderer);
  expect(pickRenderer({ stream: () => capture(true) })).toBeInstanceOf(TtyRenderer);
  expect(pickRenderer({ stream: () => capture(false) })).toBeInstanceOf(PlainRenderer);
  expect(formatBytes(1023)).toBe("1023 B");
  expect(formatBytes(1536)).toBe("1.5 KiB");
  expect(formatBytes(3 * 1024 ** 3)).toBe("3.0 GiB");
});
