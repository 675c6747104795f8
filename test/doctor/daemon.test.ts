// The daemon check against real unix sockets: a Bun.serve answering /v1/health passes, no
// socket warns, a socket left by a killed process or one nobody answers on fails.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { daemonCheck } from "../../src/doctor/daemon.ts";
import { createHostProbe } from "../../src/doctor/probe.ts";
import { fakeContext } from "./fake-probe.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-doctor-daemon-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const probe = createHostProbe({ searchPath: "" });
const check = daemonCheck();

let n = 0;
/** A fresh runtime dir, and the socket path the check will look at. */
function runtime(): { ctx: ReturnType<typeof fakeContext>; socket: string } {
  const runtimeDir = path.join(tmp, `run${n++}`, "banger");
  fs.mkdirSync(runtimeDir, { recursive: true });
  return { ctx: fakeContext(probe, { paths: { stateDir: tmp, cacheDir: tmp, configDir: tmp, runtimeDir } }), socket: path.join(runtimeDir, "banger.sock") };
}

test("a daemon answering GET /v1/health passes with its version", async () => {
  const { ctx, socket } = runtime();
  const seen: string[] = [];
  const server = Bun.serve({
    unix: socket,
    fetch(req) {
      seen.push(`${req.method} ${new URL(req.url).pathname}`);
      return Response.json({ version: "0.2.0-dev" });
    },
  });
  try {
    const r = await check.run(ctx);
    expect(r).toEqual({ status: "pass", summary: `daemon 0.2.0-dev answers on ${socket}` });
    expect(seen).toEqual(["GET /v1/health"]);
  } finally {
    server.stop(true);
  }
});

test("a plain-text version is taken as it is", async () => {
  const { ctx, socket } = runtime();
  const server = Bun.serve({ unix: socket, fetch: () => new Response("banger 0.3\n") });
  try {
    expect((await check.run(ctx)).summary).toBe(`daemon banger 0.3 answers on ${socket}`);
  } finally {
    server.stop(true);
  }
});

test("a daemon that answers with an error status warns: alive, but not speaking this API", async () => {
  const { ctx, socket } = runtime();
  const server = Bun.serve({ unix: socket, fetch: () => new Response("no such route", { status: 404 }) });
  try {
    const r = await check.run(ctx);
    expect(r.status).toBe("warn");
    expect(r.summary).toContain("HTTP 404");
    expect(r.fix).toContain("banger daemon stop");
  } finally {
    server.stop(true);
  }
});

test("no socket warns: the daemon starts on demand", async () => {
  const { ctx, socket } = runtime();
  const r = await check.run(ctx);
  expect(r.status).toBe("warn");
  expect(r.summary).toBe(`daemon not running (it starts on demand; no ${socket})`);
});

test("a socket left by a killed daemon (nothing listening) fails as stale", async () => {
  const { ctx, socket } = runtime();
  // A process killed with SIGKILL cannot unlink its socket: exactly what a crashed daemon leaves.
  const child = Bun.spawn([process.execPath, "-e", `Bun.listen({ unix: ${JSON.stringify(socket)}, socket: { data() {} } }); console.log("ready");`], { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  const first = await reader.read();
  expect(new TextDecoder().decode(first.value)).toContain("ready");
  child.kill("SIGKILL");
  await child.exited;
  expect(fs.statSync(socket).isSocket()).toBe(true);

  const r = await check.run(ctx);
  expect(r.status).toBe("fail");
  expect(r.summary).toBe(`stale socket ${socket}: nothing answers (ECONNREFUSED)`);
  expect(r.fix).toBe(`\`banger daemon stop\`, or remove ${socket}`);
});

test("a listener that accepts and never answers fails after the 1 s timeout", async () => {
  const { ctx, socket } = runtime();
  const listener = Bun.listen({ unix: socket, socket: { data() {} } });
  try {
    const started = performance.now();
    const r = await check.run(ctx);
    const elapsed = performance.now() - started;
    expect(r.status).toBe("fail");
    expect(r.summary).toBe(`stale socket ${socket}: nothing answers (no answer within 1 s)`);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(5000);
  } finally {
    listener.stop(true);
  }
});

test("a regular file where the socket should be fails", async () => {
  const { ctx, socket } = runtime();
  fs.writeFileSync(socket, "");
  const r = await check.run(ctx);
  expect(r).toEqual({ status: "fail", summary: `${socket} is a file, not the daemon's socket`, fix: `remove ${socket}` });
});
