// The host-side vsock client against a fake Firecracker: a unix socket server in this test that
// speaks the CONNECT/OK handshake and then pipes the connection into the real guest agent
// (`sh assets/guest/usr/local/bin/banger-vsock-agent`, reading a temp guest root), or misbehaves
// in the ways a VMM or guest can: close without answering, answer something else, stay silent.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { AGENT_PORT, connectVsock, VsockError } from "../../src/vm/index.ts";

const AGENT = resolve(import.meta.dir, "../../assets/guest/usr/local/bin/banger-vsock-agent");
const HOST_PORT = 1073741824;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "banger-vsock-"));
  dirs.push(d);
  return d;
}

/** A guest root for the agent's STATUS: systemd, first boot done, sshd running, up 42.5 s. */
function guestRoot(): string {
  const root = tempDir();
  const put = (p: string, content: string, mode = 0o644): void => {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), content);
    chmodSync(join(root, p), mode);
  };
  put("/proc/uptime", "42.50 80.00\n");
  put("/proc/311/comm", "sshd\n");
  put("/usr/sbin/sshd", "#!/bin/sh\n", 0o755);
  mkdirSync(join(root, "run/systemd/system"), { recursive: true });
  return root;
}

type Behaviour =
  | { kind: "agent" } // OK, then the real agent
  | { kind: "close" } // close without a reply, as Firecracker does when nothing listens
  | { kind: "reply"; line: string } // answer the CONNECT with this line
  | { kind: "silent" } // accept, never answer
  | { kind: "ok-then"; answer: (request: string) => string | null }; // OK, then canned replies (null: none)

interface FakeVmm {
  path: string;
  connects: string[];
  agentExits: Promise<number>[];
  stop(): Promise<void>;
}

async function fakeVmm(behaviour: Behaviour): Promise<FakeVmm> {
  const dir = tempDir();
  const path = join(dir, "v.sock");
  const root = guestRoot();
  const connects: string[] = [];
  const agentExits: Promise<number>[] = [];
  const sockets = new Set<Socket>();

  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    let head = Buffer.alloc(0);
    const onHandshake = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(0x0a);
      if (nl === -1) return;
      sock.off("data", onHandshake);
      connects.push(head.subarray(0, nl).toString());
      const rest = head.subarray(nl + 1);
      switch (behaviour.kind) {
        case "close":
          sock.destroy();
          return;
        case "reply":
          sock.end(`${behaviour.line}\n`);
          return;
        case "silent":
          return;
        case "ok-then": {
          sock.write(`OK ${HOST_PORT}\n`);
          let buf = rest.toString();
          const answer = behaviour.answer;
          const feed = (s: string): void => {
            buf += s;
            for (let i = buf.indexOf("\n"); i !== -1; i = buf.indexOf("\n")) {
              const reply = answer(buf.slice(0, i));
              buf = buf.slice(i + 1);
              if (reply !== null) sock.write(`${reply}\n`);
            }
          };
          feed("");
          sock.on("data", (c: Buffer) => feed(c.toString()));
          return;
        }
        case "agent": {
          sock.write(`OK ${HOST_PORT}\n`);
          const agent = Bun.spawn(["sh", AGENT], {
            env: { PATH: process.env.PATH ?? "/usr/bin:/bin", BANGER_ROOT: root },
            stdin: "pipe",
            stdout: "pipe",
            stderr: "inherit",
          });
          agentExits.push(agent.exited);
          if (rest.length) agent.stdin.write(rest);
          agent.stdin.flush();
          sock.on("data", (c: Buffer) => {
            agent.stdin.write(c);
            agent.stdin.flush();
          });
          sock.on("end", () => agent.stdin.end());
          sock.on("close", () => agent.stdin.end());
          void (async () => {
            for await (const out of agent.stdout) sock.write(out);
            sock.end();
          })();
          return;
        }
      }
    };
    sock.on("data", onHandshake);
  });
  await new Promise<void>((res) => server.listen(path, res));
  return {
    path,
    connects,
    agentExits,
    stop: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}

describe("vsock client against the real agent", () => {
  test("handshake, then ping, status and an unknown command", async () => {
    const vmm = await fakeVmm({ kind: "agent" });
    try {
      const conn = await connectVsock(vmm.path);
      expect(vmm.connects).toEqual([`CONNECT ${AGENT_PORT}`]);
      expect(conn.hostPort).toBe(HOST_PORT);
      expect(await conn.ping()).toBe(true);
      expect(await conn.status()).toEqual({ uptime: 42.5, init: "systemd", firstBoot: "done", sshd: "running" });
      expect(await conn.request("REBOOT")).toBe("ERR unknown command");
      conn.close();
      // The agent sees end of input and exits.
      expect(await vmm.agentExits[0]).toBe(0);
    } finally {
      await vmm.stop();
    }
  });

  test("requests sent together are answered in order", async () => {
    const vmm = await fakeVmm({ kind: "agent" });
    try {
      const conn = await connectVsock(vmm.path, AGENT_PORT, { timeoutMs: 5_000 });
      const [a, b, c, d] = await Promise.all([conn.ping(), conn.request("X"), conn.status(), conn.ping()]);
      expect([a, b, c.init, d]).toEqual([true, "ERR unknown command", "systemd", true]);
      conn.close();
    } finally {
      await vmm.stop();
    }
  });

  test("another port is asked for as given", async () => {
    const vmm = await fakeVmm({ kind: "agent" });
    try {
      const conn = await connectVsock(vmm.path, 52);
      expect(vmm.connects).toEqual(["CONNECT 52"]);
      conn.close();
    } finally {
      await vmm.stop();
    }
  });
});

describe("vsock client failures", () => {
  async function failure(p: Promise<unknown>): Promise<VsockError> {
    try {
      await p;
    } catch (err) {
      if (err instanceof VsockError) return err;
      throw err;
    }
    throw new Error("expected a VsockError, got success");
  }

  test("VMM closes without answering (nothing listens): error names socket and port", async () => {
    const vmm = await fakeVmm({ kind: "close" });
    try {
      const err = await failure(connectVsock(vmm.path));
      expect(err.socketPath).toBe(vmm.path);
      expect(err.message).toBe(
        `vsock ${vmm.path}: the VMM closed the connection without answering CONNECT 1024 (is the guest listening on port 1024?)`,
      );
    } finally {
      await vmm.stop();
    }
  });

  test("VMM answers something other than OK: error names socket and reply", async () => {
    const vmm = await fakeVmm({ kind: "reply", line: "FAILURE no such port" });
    try {
      const err = await failure(connectVsock(vmm.path));
      expect(err.message).toBe(`vsock ${vmm.path}: CONNECT 1024 refused: the VMM replied "FAILURE no such port"`);
    } finally {
      await vmm.stop();
    }
  });

  test("VMM stays silent: the handshake times out", async () => {
    const vmm = await fakeVmm({ kind: "silent" });
    try {
      const t0 = performance.now();
      const err = await failure(connectVsock(vmm.path, AGENT_PORT, { timeoutMs: 200 }));
      expect(err.message).toBe(`vsock ${vmm.path}: no reply to CONNECT 1024 within 200 ms`);
      expect(performance.now() - t0).toBeLessThan(2_000);
    } finally {
      await vmm.stop();
    }
  });

  test("no socket at the path: error names it", async () => {
    const path = join(tempDir(), "missing.sock");
    const err = await failure(connectVsock(path));
    expect(err.message).toStartWith(`vsock: cannot connect to the VMM's unix socket ${path}: `);
  });

  test("a request with no reply times out and closes the connection", async () => {
    const vmm = await fakeVmm({ kind: "ok-then", answer: () => null });
    try {
      const conn = await connectVsock(vmm.path);
      const err = await failure(conn.ping({ timeoutMs: 150 }));
      expect(err.message).toBe(`vsock ${vmm.path}: no reply to "PING" on port 1024 within 150 ms`);
      const after = await failure(conn.ping());
      expect(after.message).toBe(`vsock ${vmm.path}: connection closed`);
    } finally {
      await vmm.stop();
    }
  });

  test("ping is false for a reply other than PONG; a malformed STATUS is an error", async () => {
    const vmm = await fakeVmm({ kind: "ok-then", answer: (r) => (r === "PING" ? "PING" : '{"uptime":"soon"}') });
    try {
      const conn = await connectVsock(vmm.path);
      expect(await conn.ping()).toBe(false);
      const err = await failure(conn.status());
      expect(err.message).toBe(`vsock ${vmm.path}: STATUS reply "{\\"uptime\\":\\"soon\\"}": uptime is not a number`);
      conn.close();
    } finally {
      await vmm.stop();
    }
  });

  test("the guest closing mid-request fails that request", async () => {
    let arrived: () => void = () => {};
    const requestArrived = new Promise<void>((res) => (arrived = res));
    const vmm = await fakeVmm({
      kind: "ok-then",
      answer: () => {
        arrived();
        return null;
      },
    });
    try {
      const conn = await connectVsock(vmm.path);
      const pending = failure(conn.request("STATUS", { timeoutMs: 5_000 }));
      await requestArrived;
      await vmm.stop();
      expect((await pending).message).toBe(`vsock ${vmm.path}: connection closed`);
    } finally {
      await vmm.stop().catch(() => {});
    }
  });

  test("bad arguments are refused before connecting", async () => {
    await expect(connectVsock("/nonexistent", -1)).rejects.toThrow(RangeError);
    await expect(connectVsock("/nonexistent", 1024, { timeoutMs: 0 })).rejects.toThrow(RangeError);
  });
});
