// banger-vsock-agent under dash and busybox sh, fed over stdin as systemd (StandardInput=socket)
// or socat would; STATUS reads a fake /proc, /run and marker in a temp root.
import { describe, expect } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { testWith } from "../helpers/env.ts";
import { eachShell, expectExit, runScript, Sandbox, SCRIPTS, SHELLS } from "./lib.ts";

function guest(opts: { uptime?: string; systemd?: boolean; pending?: boolean; sshd?: "running" | "stopped" | "absent" }): Sandbox {
  const box = new Sandbox();
  box.write("/proc/uptime", `${opts.uptime ?? "123.45"} 200.10\n`);
  box.write("/proc/1/comm", opts.systemd ? "systemd\n" : "banger-init\n");
  box.write("/proc/77/comm", "socat\n");
  if (opts.systemd) box.mkdir("/run/systemd/system");
  if (opts.pending) box.write("/var/lib/banger/first-boot-pending", "");
  if (opts.sshd !== "absent") box.write("/usr/sbin/sshd", "#!/bin/sh\n", 0o755);
  if (opts.sshd === "running") box.write("/proc/4242/comm", "sshd\n");
  return box;
}

describe("banger-vsock-agent", () => {
  eachShell("PING, STATUS, unknown: one reply line each, in order; exits 0 at EOF", async (sh) => {
    const box = guest({ systemd: true, pending: true, sshd: "running" });
    const r = await runScript(sh, SCRIPTS.agent, box, { stdin: "PING\nSTATUS\nHELLO\n\nping\nPING\n" });
    expectExit(r, 0);
    expect(r.stdout).toBe(
      [
        "PONG",
        '{"uptime":123.45,"init":"systemd","firstBoot":"pending","sshd":"running"}',
        "ERR unknown command",
        "ERR unknown command",
        "ERR unknown command",
        "PONG",
        "",
      ].join("\n"),
    );
    expect(r.stderr).toBe("");
  });

  eachShell("STATUS on a banger-init guest after first boot, sshd stopped", async (sh) => {
    const box = guest({ sshd: "stopped" });
    const r = await runScript(sh, SCRIPTS.agent, box, { stdin: "STATUS\n" });
    expectExit(r, 0);
    expect(JSON.parse(r.stdout)).toEqual({ uptime: 123.45, init: "banger-init", firstBoot: "done", sshd: "stopped" });
  });

  eachShell("STATUS without sshd installed: absent", async (sh) => {
    const box = guest({ sshd: "absent" });
    box.write("/proc/4242/comm", "sshd\n");
    const r = await runScript(sh, SCRIPTS.agent, box, { stdin: "STATUS\n" });
    expect(JSON.parse(r.stdout).sshd).toBe("absent");
  });

  eachShell("STATUS stays valid JSON when /proc/uptime is missing or odd", async (sh) => {
    const box = guest({ uptime: "1.2.3" });
    let r = await runScript(sh, SCRIPTS.agent, box, { stdin: "STATUS\n" });
    expect(JSON.parse(r.stdout).uptime).toBe(0);
    rmSync(box.path("/proc/uptime"));
    r = await runScript(sh, SCRIPTS.agent, box, { stdin: "STATUS\n" });
    expect(JSON.parse(r.stdout).uptime).toBe(0);
  });

  eachShell("CRLF requests and a last request without a newline are answered", async (sh) => {
    const r = await runScript(sh, SCRIPTS.agent, guest({}), { stdin: "PING\r\nPING" });
    expectExit(r, 0);
    expect(r.stdout).toBe("PONG\nPONG\n");
  });

  eachShell("empty input: no output, exit 0", async (sh) => {
    const r = await runScript(sh, SCRIPTS.agent, guest({}), { stdin: "" });
    expectExit(r, 0);
    expect(r.stdout).toBe("");
  });

  eachShell("answers each request before the next arrives (interactive use)", async (sh) => {
    const box = guest({});
    const p = Bun.spawn([...sh.argv(), SCRIPTS.agent], {
      env: { PATH: box.bin, BANGER_ROOT: box.root },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    const reader = p.stdout.getReader();
    const dec = new TextDecoder();
    let got = "";
    const nextLine = async (): Promise<string> => {
      while (!got.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`agent closed stdout; had ${JSON.stringify(got)}`);
        got += dec.decode(value);
      }
      const i = got.indexOf("\n");
      const line = got.slice(0, i);
      got = got.slice(i + 1);
      return line;
    };
    for (let i = 0; i < 3; i++) {
      p.stdin.write("PING\n");
      p.stdin.flush();
      expect(await nextLine()).toBe("PONG");
    }
    p.stdin.end();
    expect(await p.exited).toBe(0);
  });

  // banger-init runs `socat VSOCK-LISTEN:1024,fork EXEC:banger-vsock-agent`. vsock needs a VM;
  // the same socat EXEC plumbing over a unix socket shows the agent works as socat's child.
  for (const sh of SHELLS) {
    testWith({ tools: ["socat", sh.tool] }, `behind socat EXEC, one agent per connection [${sh.name}]`, async () => {
      const box = guest({ sshd: "running" });
      const sock = join(box.dir, "agent.sock");
      const socat = Bun.spawn(["socat", `UNIX-LISTEN:${sock},fork`, `EXEC:${[...sh.argv(), SCRIPTS.agent].join(" ")}`], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", BANGER_ROOT: box.root },
        stdout: "ignore",
        stderr: "pipe",
      });
      try {
        for (let i = 0; !existsSync(sock); i++) {
          if (i > 200) throw new Error("socat did not create its socket");
          await Bun.sleep(10);
        }
        for (let round = 0; round < 2; round++) {
          const reply = await new Promise<string>((resolve, reject) => {
            let got = "";
            const c = connect({ path: sock }, () => c.end("PING\nSTATUS\n"));
            c.on("data", (d: Buffer) => (got += d.toString()));
            c.on("end", () => resolve(got));
            c.on("error", reject);
          });
          const [pong, status] = reply.trimEnd().split("\n");
          expect(pong).toBe("PONG");
          expect(JSON.parse(status ?? "")).toEqual({ uptime: 123.45, init: "banger-init", firstBoot: "done", sshd: "running" });
        }
      } finally {
        socat.kill();
        await socat.exited;
      }
    });
  }
});
