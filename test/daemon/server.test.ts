// The daemon in this process (startDaemon: the same services graph as `banger daemon run`) and
// its client over the real unix socket: versions checked by both sides, requests it cannot read
// refused, a pull's stream, a hang-up that aborts the pull and the outcome the client asks for
// afterwards, stop. And the pull stream's throttling of byte counts, on its own.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DaemonClient, DaemonVersionError, RemoteError } from "../../src/daemon/client/index.ts";
import { startDaemon, type RunningDaemon } from "../../src/daemon/daemon.ts";
import { CLIENT_HEADER, DAEMON_HEADER, OWN_VERSION, type OperationState, type PullLine } from "../../src/daemon/protocol.ts";
import { EventStream } from "../../src/daemon/server.ts";
import { makeTar } from "../helpers/oci-images.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-server-"));
const running: RunningDaemon[] = [];
afterAll(async () => {
  for (const d of running) await d.stop("test over");
  fs.rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
async function daemon(): Promise<{ d: RunningDaemon; client: DaemonClient; env: Record<string, string> }> {
  const root = path.join(tmp, `d${n++}`);
  const env = { HOME: root, XDG_STATE_HOME: `${root}/state`, XDG_CACHE_HOME: `${root}/cache`, XDG_CONFIG_HOME: `${root}/config`, XDG_RUNTIME_DIR: `${root}/run` };
  const d = await startDaemon({ env, idleExitMs: null });
  running.push(d);
  return { d, client: new DaemonClient({ socket: d.paths.socketPath }), env };
}

const raw = (d: RunningDaemon, route: string, init: RequestInit = {}) => fetch(`http://banger${route}`, { ...init, unix: d.paths.socketPath } as RequestInit);

test("versions: every answer says the daemon's; another client version is refused by the daemon and by the client", async () => {
  const { d, client } = await daemon();
  const h = await client.health();
  expect(h).toMatchObject({ version: OWN_VERSION.version, protocol: OWN_VERSION.protocol, pid: process.pid, socket: d.paths.socketPath, operations: 0 });
  const list = await raw(d, "/v1/images", { headers: { [CLIENT_HEADER]: "9.9.9/1" } });
  expect(list.status).toBe(409);
  expect(list.headers.get(DAEMON_HEADER)).toBe(`${OWN_VERSION.version}/${OWN_VERSION.protocol}`);
  expect(((await list.json()) as { error: { message: string } }).error.message).toBe(
    `the running daemon is version ${OWN_VERSION.version} (protocol 1), this CLI is 9.9.9 (protocol 1); restart it with "banger daemon stop" (it restarts on the next command)`,
  );
  // Health answers any version (that is how stop works across releases).
  expect((await raw(d, "/v1/health", { headers: { [CLIENT_HEADER]: "9.9.9/7" } })).status).toBe(200);
  const newer = new DaemonClient({ socket: d.paths.socketPath, version: { version: "9.9.9", protocol: 2 } });
  const err = await newer.list().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DaemonVersionError);
  expect((err as Error).message).toContain("this CLI is 9.9.9 (protocol 2)");
});

test("what the daemon cannot read is refused with a ProtocolError, and it goes on serving", async () => {
  const { d, client } = await daemon();
  const bad = await raw(d, `/v1/images/pull?params=${encodeURIComponent(JSON.stringify({ source: "x", operation: "short" }))}`, { method: "POST" });
  expect(bad.status).toBe(400);
  expect(await bad.json()).toEqual({ error: { name: "ProtocolError", message: "pull: operation must be 8-64 letters, digits, - or _" } });
  expect((await raw(d, "/v2/images")).status).toBe(400);
  expect((await raw(d, "/v1/nothing")).status).toBe(400);
  expect(await client.list()).toEqual([]);
  const missing = await client.show("ghost").catch((e: unknown) => e);
  expect(missing).toBeInstanceOf(RemoteError);
  expect(missing).toMatchObject({ name: "ImageNotFoundError", message: 'image "ghost" not found; `banger image list` shows the images there are' });
});

test("a pull streams its events and ends with the record; relative paths are the client's", async () => {
  const { client } = await daemon();
  const dir = path.join(tmp, "src");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "small.tar"), makeTar([{ name: "etc/", dir: true }, { name: "etc/hostname", content: "box\n" }, { name: "root/", dir: true }]));
  const events: string[] = [];
  const rec = await client.pull({ source: "rootfs:small.tar", cwd: dir }, { progress: (e) => events.push(e.type === "phase" ? `phase ${e.phase}` : e.type) });
  expect(rec).toMatchObject({ name: "small", source: `rootfs:${path.join(dir, "small.tar")}` });
  expect(events).toContain("phase resolve");
  expect(events).toContain("phase publish");
  expect((await client.list()).map((r) => r.name)).toEqual(["small"]);
});

test("a client that hangs up aborts its pull; the outcome is kept for it to ask; stop ends it all", async () => {
  const { d, client } = await daemon();
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      await Bun.sleep(20);
      sent++;
      c.enqueue(new Uint8Array(4096)); // never ends: the pull waits in the middle of spooling
    },
  });
  const ac = new AbortController();
  const op = "test-operation-1";
  const res = await raw(d, `/v1/images/pull?params=${encodeURIComponent(JSON.stringify({ source: "-", name: "piped", operation: op }))}`, { method: "POST", body, signal: ac.signal, duplex: "half" } as RequestInit);
  const reader = res.body!.getReader();
  const first = JSON.parse(new TextDecoder().decode((await reader.read()).value).split("\n")[0]!) as PullLine;
  expect(first).toEqual({ type: "started", operation: op });
  // Read on, as the CLI does. With no read pending, a full collection (a daemon of an earlier
  // test makes one after its pull) stopped the upload: the body was never pulled again.
  const reading = (async () => {
    while (!(await reader.read()).done);
  })().catch(() => {});
  while (sent < 5) await Bun.sleep(10);
  expect((await client.health()).operations).toBe(1);
  ac.abort();
  await reading;
  const st = (await client.operation(op, 5000)) as Extract<OperationState, { state: "finished" }>;
  expect(st.state).toBe("finished");
  expect(st.error).toEqual({ name: "ImagePullAbortedError", message: 'image "piped": pull of - interrupted; nothing was kept' });
  expect(fs.readdirSync(d.paths.imagesDir)).toEqual([]);
  expect((await client.operation("never-seen-op", 0)).state).toBe("unknown");

  await d.stop("test");
  expect(await d.stopped).toBe("test");
  expect(fs.existsSync(d.paths.socketPath)).toBe(false);
  const log = fs.readFileSync(d.paths.logPath, "utf8");
  expect(log).toContain('"cancelled":"the client disconnected"');
  expect(log).toContain('"msg":"daemon stopped"');
});

test("the pull stream drops byte counts while its reader lags, never a state change", async () => {
  const s = new EventStream(() => {});
  for (let i = 0; i < 1000; i++) s.event({ type: "layer", index: 0, digest: "sha256:x", bytesDone: i, bytesTotal: 1000, state: "downloading" });
  s.event({ type: "layer", index: 0, digest: "sha256:x", bytesDone: 1000, bytesTotal: 1000, state: "done" });
  for (let i = 0; i < 1000; i++) s.event({ type: "unpack", index: 0, bytes: i, done: false });
  s.event({ type: "unpack", index: 0, bytes: 1000, done: true });
  s.send({ type: "result", record: { name: "x" } as never });
  s.close();
  const lines: PullLine[] = [];
  for await (const chunk of s.body) for (const l of new TextDecoder().decode(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l) as PullLine);
  // Nobody read while the events came: only what fit in the queue before it was full, then the state changes.
  expect(lines.length).toBeLessThan(80);
  const states = lines.filter((l) => l.type === "layer").map((l) => (l as { state: string }).state);
  expect(states[0]).toBe("downloading");
  expect(states.at(-1)).toBe("done");
  expect(lines.some((l) => l.type === "unpack" && l.done)).toBe(true);
  expect(lines.at(-1)!.type).toBe("result");
});
