// banger-init without booting a VM: `stop` from a shell (signals a given pid), its functions
// sourced one at a time under dash and busybox sh with stub tools, and, where root may create a
// pid namespace, the whole script as PID 1 of that namespace with every path in a temp root.
// The QEMU boot test (src/inject's side) covers it as the real PID 1.
import { describe, expect } from "bun:test";
import { readFileSync } from "node:fs";
import { testWith } from "../helpers/env.ts";
import { eachShell, expectExit, runScript, runSnippet, Sandbox, SCRIPTS, SHELLS, type Shell } from "./lib.ts";

const SOURCE = { BANGER_INIT_SOURCE: "1" };

describe("banger-init stop (not PID 1)", () => {
  eachShell("sends TERM to BANGER_INIT_PID and exits 0", async (sh) => {
    const victim = Bun.spawn(["sleep", "60"], { stdout: "ignore", stderr: "ignore" });
    try {
      const r = await runScript(sh, SCRIPTS.init, new Sandbox(), { args: ["stop"], env: { BANGER_INIT_PID: String(victim.pid) } });
      expectExit(r, 0);
      expect(r.stderr).toContain(`asked PID ${victim.pid} to power off`);
      await victim.exited;
      expect(victim.signalCode).toBe("SIGTERM");
    } finally {
      victim.kill("SIGKILL");
    }
  });

  eachShell("a pid that can't be signalled: exit 1 with a message", async (sh) => {
    const gone = Bun.spawn(["true"]);
    await gone.exited;
    const r = await runScript(sh, SCRIPTS.init, new Sandbox(), { args: ["stop"], env: { BANGER_INIT_PID: String(gone.pid) } });
    expectExit(r, 1);
    expect(r.stderr).toContain(`could not signal PID ${gone.pid}`);
  });

  // Never "" here: unset or empty means the default, PID 1, which is this machine's init.
  for (const bad of ["-1", "0", "1x", " "]) {
    eachShell(`BANGER_INIT_PID=${JSON.stringify(bad)} is not a pid: exit 2, nothing signalled`, async (sh) => {
      const r = await runScript(sh, SCRIPTS.init, new Sandbox(), { args: ["stop"], env: { BANGER_INIT_PID: bad } });
      expectExit(r, 2);
      expect(r.stderr).toContain("BANGER_INIT_PID must be a pid");
    });
  }

  eachShell("no command and not PID 1: refuses (exit 2) and explains", async (sh) => {
    const r = await runScript(sh, SCRIPTS.init, new Sandbox());
    expectExit(r, 2);
    expect(r.stderr).toContain("not PID 1");
    expect(r.stderr).toContain("banger-init stop");
  });
});

describe("banger-init functions (sourced)", () => {
  const FUNCTIONS = [
    "log",
    "is_mounted",
    "mount_fs",
    "mount_all",
    "set_hostname_from_file",
    "loopback_up",
    "run_step",
    "prepare_sshd",
    "prepare_agent",
    "start_sshd",
    "start_agent",
    "start_services",
    "boot_steps",
    "boot",
    "others_alive",
    "wait_seconds",
    "power_off",
    "pid1_main",
    "stop_cmd",
  ];

  eachShell("sourcing defines every function and runs nothing", async (sh) => {
    const box = new Sandbox().stub("mount");
    const r = await runSnippet(sh, `. "$1" || exit 9; for f in ${FUNCTIONS.join(" ")}; do type "$f" >/dev/null || exit 1; done; echo ok`, box, {
      args: [SCRIPTS.init],
      env: SOURCE,
    });
    expectExit(r, 0);
    expect(r.stdout).toBe("ok\n");
    expect(box.calls()).toEqual([]);
  });

  eachShell("mount_all mounts only what /proc/mounts lacks, remounts a read-only / rw", async (sh) => {
    const box = new Sandbox().linkTools("mkdir", "chmod").stub("mount");
    box.write(
      "/proc/mounts",
      ["/dev/vda / ext4 ro,relatime 0 0", "proc /proc proc rw 0 0", "sysfs /sys sysfs rw 0 0", "devtmpfs /dev devtmpfs rw 0 0", ""].join("\n"),
    );
    box.write("/etc/group", "root:x:0:\ntty:x:7:\n");
    const r = await runSnippet(sh, `. "$1" && mount_all`, box, { args: [SCRIPTS.init], env: SOURCE });
    expectExit(r, 0);
    const root = box.root;
    expect(box.calls()).toEqual([
      `mount -t devpts -o mode=0620,ptmxmode=0666,gid=7 devpts ${root}/dev/pts`,
      `mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs ${root}/dev/shm`,
      `mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs ${root}/run`,
      `mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs ${root}/tmp`,
      `mount -o remount,rw ${root}/`,
    ]);
    expect(box.exists("/run/lock")).toBe(true);
  });

  eachShell("mount_all with nothing mounted: proc first, then the rest; a failed mount is logged", async (sh) => {
    const box = new Sandbox().linkTools("mkdir", "chmod").stub("mount", `[ "$2" = sysfs ] && exit 32; exit 0`);
    const r = await runSnippet(sh, `. "$1" && mount_all`, box, { args: [SCRIPTS.init], env: SOURCE });
    expectExit(r, 0);
    expect(box.calls().map((c) => c.split(" ")[2])).toEqual(["proc", "sysfs", "devtmpfs", "devpts", "tmpfs", "tmpfs", "tmpfs"]);
    expect(r.stderr).toContain("banger-init: could not mount sysfs on /sys");
  });

  eachShell("log writes to the console when it is writable", async (sh) => {
    const box = new Sandbox();
    box.write("/dev/console", "");
    const r = await runSnippet(sh, `. "$1" && log hello && log world`, box, { args: [SCRIPTS.init], env: SOURCE });
    expectExit(r, 0);
    expect(box.read("/dev/console")).toBe("banger-init: hello\nbanger-init: world\n");
    expect(r.stderr).toBe("");
  });

  eachShell("start_agent skips without socat, then without /dev/vsock, else starts socat", async (sh) => {
    const box = new Sandbox();
    let r = await runSnippet(sh, `. "$1" && start_agent`, box, { args: [SCRIPTS.init], env: SOURCE });
    expect(r.stderr).toContain("no socat in the image: skipping the vsock agent");
    box.stub("socat");
    r = await runSnippet(sh, `. "$1" && start_agent`, box, { args: [SCRIPTS.init], env: SOURCE });
    expect(r.stderr).toContain("no /dev/vsock: skipping the vsock agent");
    expect(box.calls()).toEqual([]);
    box.write("/dev/vsock", "");
    r = await runSnippet(sh, `. "$1" && start_agent && wait`, box, { args: [SCRIPTS.init], env: SOURCE });
    expect(box.calls()).toEqual([`socat VSOCK-LISTEN:1024,fork EXEC:${box.root}/usr/local/bin/banger-vsock-agent`]);
    expect(r.stderr).toContain("vsock agent listening on port 1024");
  });

  eachShell("prepare_sshd: /run/sshd and host keys only when missing; start_sshd runs sshd", async (sh) => {
    const box = new Sandbox().linkTools("mkdir", "chmod").stub("ssh-keygen");
    box.write("/usr/sbin/sshd", `#!/bin/sh\nprintf 'sshd%s\\n' "\${*:+ $*}" >>"$BANGER_TEST_LOG"\n`, 0o755);
    let r = await runSnippet(sh, `. "$1" && prepare_sshd && start_sshd`, box, { args: [SCRIPTS.init], env: SOURCE });
    expectExit(r, 0);
    expect(box.calls()).toEqual([`ssh-keygen -A -f ${box.root}`, "sshd"]);
    expect(box.exists("/run/sshd")).toBe(true);
    box.write("/etc/ssh/ssh_host_ed25519_key", "key");
    r = await runSnippet(sh, `. "$1" && prepare_sshd && start_sshd`, box, { args: [SCRIPTS.init], env: SOURCE });
    expect(box.calls()).toEqual([`ssh-keygen -A -f ${box.root}`, "sshd", "sshd"]);
    expect(r.stderr).toContain("sshd started");
  });

  eachShell("start_sshd without /usr/sbin/sshd says so and does nothing", async (sh) => {
    const box = new Sandbox().stub("ssh-keygen");
    const r = await runSnippet(sh, `. "$1" && prepare_sshd && start_sshd`, box, { args: [SCRIPTS.init], env: SOURCE });
    expect(r.stderr).toContain("no /usr/sbin/sshd: not starting sshd");
    expect(box.calls()).toEqual([]);
  });

  eachShell("set_hostname_from_file: sets a valid name, ignores a bad one", async (sh) => {
    const box = new Sandbox().stub("hostname");
    box.write("/etc/hostname", "vm1\n");
    await runSnippet(sh, `. "$1" && set_hostname_from_file`, box, { args: [SCRIPTS.init], env: SOURCE });
    box.write("/etc/hostname", "$(reboot)\n");
    await runSnippet(sh, `. "$1" && set_hostname_from_file`, box, { args: [SCRIPTS.init], env: SOURCE });
    expect(box.calls()).toEqual(["hostname vm1"]);
  });
});

// --- as PID 1 ------------------------------------------------------------------------------

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function procInfo(pid: number): { state: string; cmdline: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] ?? "?";
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
    return { state, cmdline };
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/**
 * Everything banger-init touches lives in the sandbox: BANGER_ROOT prefixes /proc, /dev, /etc,
 * and with BANGER_ROOT set it keeps the caller's PATH, where mount, sync, hostname and ip are
 * stubs. The pid namespace confines `kill -1` to the namespace. So this never mounts anything
 * on the host, nor writes the host's sysrq.
 */
async function pid1Case(sh: Shell): Promise<void> {
  const unshare = Bun.which("unshare", { PATH: `${process.env.PATH}:/usr/bin:/bin` });
  if (!unshare) throw new Error("unshare not found");
  const probe = Bun.spawnSync([unshare, "--pid", "--fork", "--mount-proc", ...sh.argv(), "-c", "echo $$"]);
  if (probe.stdout.toString().trim() !== "1") {
    throw new Error(`unshare --pid did not give PID 1: ${probe.stdout} ${probe.stderr}`);
  }

  const box = new Sandbox().linkTools("sleep", "mkdir", "chmod").stub("mount").stub("sync").stub("hostname").stub("ip").stub("ssh-keygen");
  box.write("/dev/console", "");
  box.mkdir("/proc/sys/kernel");
  box.write("/proc/sysrq-trigger", "");
  box.write("/etc/hostname", "vm1\n");
  box.write("/etc/group", "tty:x:5:\n");
  // First boot leaves an orphan behind: a process whose parent exits at once. It must be
  // re-parented to banger-init and reaped when it ends, never left a zombie.
  // It also leaves a long-running one, standing for a service that power-off must stop.
  // The orphan ends when the test creates $BANGER_ROOT/release, so timing can't fool the test.
  box.write(
    "/usr/local/libexec/banger-first-boot",
    `#!/bin/sh\n/bin/sh -c 'until [ -e "$0" ]; do sleep 1; done' "$BANGER_ROOT/release" &\nsleep 300 &\nexit 0\n`,
    0o755,
  );
  // sshd records which signals it starts with ignored: logins inherit that.
  box.write(
    "/usr/sbin/sshd",
    `#!/bin/sh\nPATH=/usr/bin:/bin\nprintf 'sshd %s\\n' "$(grep SigIgn /proc/$$/status)" >>"$BANGER_TEST_LOG"\n`,
    0o755,
  );
  box.write("/usr/local/libexec/banger-network-bootstrap", readFileSync(SCRIPTS.network, "utf8"), 0o755);

  const ns = Bun.spawn([unshare, "--pid", "--fork", "--mount-proc", "--kill-child", ...sh.argv(), SCRIPTS.init], {
    env: {
      PATH: box.bin,
      BANGER_ROOT: box.root,
      BANGER_TEST_LOG: box.log,
      BANGER_INIT_STOP_WAIT: "1",
      BANGER_INIT_POWEROFF_WAIT: "120",
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let init = 0;
  try {
    await until("the namespace's PID 1", () => (init = childrenOf(ns.pid)[0] ?? 0) !== 0);
    const consoleLog = (): string => box.read("/dev/console");
    await until("boot done on the console", () => consoleLog().includes("banger-init: boot done"));

    // The orphan is now banger-init's child...
    const orphan = (): number | undefined => childrenOf(init).find((c) => procInfo(c)?.cmdline.includes(`${box.root}/release`));
    await until("the orphan re-parented to PID 1", () => orphan() !== undefined);
    // ...and once it has ended, it is reaped: no zombie child left.
    box.write("/release", "");
    await until("the orphan reaped", () => orphan() === undefined && childrenOf(init).every((c) => procInfo(c)?.state !== "Z"));

    const root = box.root;
    expect(box.calls()).toEqual([
      `mount -t proc -o nosuid,nodev,noexec proc ${root}/proc`,
      `mount -t sysfs -o nosuid,nodev,noexec sysfs ${root}/sys`,
      `mount -t devtmpfs -o mode=0755,nosuid devtmpfs ${root}/dev`,
      `mount -t devpts -o mode=0620,ptmxmode=0666,gid=5 devpts ${root}/dev/pts`,
      `mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs ${root}/dev/shm`,
      `mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs ${root}/run`,
      `mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs ${root}/tmp`,
      "hostname vm1",
      "ip link set dev lo up",
      `ssh-keygen -A -f ${root}`,
      expect.stringMatching(/^sshd SigIgn:\s+[0-9a-f]{16}$/),
    ]);
    // SIGINT (bit 1) and SIGQUIT (bit 2) must not be ignored in sshd, or Ctrl-C would do
    // nothing in its sessions (a shell's background children start with both ignored).
    const sigIgn = BigInt("0x" + (box.calls()[10] ?? "").split(/\s+/).pop());
    expect(sigIgn & 0b110n).toBe(0n);
    // The steps' own output reaches the console too.
    expect(consoleLog()).toContain("banger-network: no /etc/banger-network.conf: nothing to configure");

    expect(childrenOf(init).some((c) => procInfo(c)?.cmdline === "sleep 300")).toBe(true);
    process.kill(init, "SIGTERM");
    await until("the power-off request", () => box.read("/proc/sysrq-trigger") === "o\n");
    expect(box.read("/proc/sys/kernel/sysrq")).toBe("1\n");
    const calls = box.calls();
    expect(calls.slice(-2)).toEqual(["sync", `mount -o remount,ro ${root}/`]);
    expect(consoleLog()).toContain("banger-init: powering off: stopping all processes");
    // The stand-in service got TERM (and is reaped).
    await until("the service stopped", () => !childrenOf(init).some((c) => procInfo(c)?.cmdline === "sleep 300"), 5_000);
    // PID 1 never exits, not even after asking for power-off.
    await Bun.sleep(500);
    expect(alive(init)).toBe(true);
    expect(ns.exitCode).toBeNull();
  } finally {
    if (init) process.kill(init, "SIGKILL");
    ns.kill("SIGKILL");
    await ns.exited;
  }
}

describe("banger-init as PID 1 of a pid namespace", () => {
  for (const sh of SHELLS) {
    testWith(
      { tools: ["unshare", sh.tool], root: true },
      `boots with stubbed mounts, reaps an orphan, powers off on TERM and keeps running [${sh.name}]`,
      () => pid1Case(sh),
      30_000,
    );
  }
});
