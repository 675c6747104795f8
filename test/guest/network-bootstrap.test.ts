// banger-network-bootstrap under dash and busybox sh, in a temp guest root with stub `ip`,
// `busybox`, `ifconfig`, `route` and `hostname` that record their arguments.
import { describe, expect } from "bun:test";
import { existsSync, lstatSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eachShell, expectExit, runScript, Sandbox, SCRIPTS } from "./lib.ts";

// What the script itself needs besides builtins; everything network-related is a stub.
const BASE_TOOLS = ["mv", "rm", "tr", "sleep"];

const CONF = [
  "# written by banger",
  "BANGER_ADDRESS=10.0.2.15/24",
  "BANGER_GATEWAY=10.0.2.2",
  'BANGER_DNS="10.0.2.3 1.1.1.1"',
  "BANGER_HOSTNAME=vm1",
  "",
].join("\n");

/** A guest root with lo, a virtio NIC named like QEMU names it (ens3) and a tunnel device. */
function guest(conf: string | null): Sandbox {
  const box = new Sandbox().linkTools(...BASE_TOOLS);
  box.write("/sys/class/net/lo/address", "00:00:00:00:00:00\n");
  box.write("/sys/class/net/ens3/address", "52:54:00:12:34:56\n");
  box.mkdir("/sys/class/net/ens3/device");
  // Sorted before ens3 and with no device behind it: must not be picked by default.
  box.write("/sys/class/net/bond0/address", "aa:bb:cc:dd:ee:ff\n");
  box.write("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\told-name\n::1\tlocalhost ip6-localhost\n");
  box.mkdir("/proc/sys/kernel");
  if (conf !== null) box.write("/etc/banger-network.conf", conf);
  return box;
}

const RUN_ENV = { BANGER_NET_WAIT: "0" };

const IP_CALLS_ENS3 = [
  "ip link set dev lo up",
  "ip link set dev ens3 up",
  "ip -f inet addr flush dev ens3",
  "ip addr add 10.0.2.15/24 dev ens3",
  "ip route replace default via 10.0.2.2 dev ens3",
];

describe("banger-network-bootstrap", () => {
  eachShell("no conf file: exits 0 with one message and touches nothing", async (sh) => {
    const box = guest(null).stub("ip").stub("hostname");
    const r = await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV });
    expectExit(r, 0);
    expect(r.stderr.trim().split("\n")).toEqual(["banger-network: no /etc/banger-network.conf: nothing to configure"]);
    expect(box.calls()).toEqual([]);
    expect(box.exists("/etc/resolv.conf")).toBe(false);
    expect(box.exists("/etc/hostname")).toBe(false);
  });

  eachShell("a conf: ip calls on the first device-backed NIC, resolv.conf, hostname, hosts", async (sh) => {
    const box = guest(CONF).stub("ip").stub("hostname");
    const r = await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV });
    expectExit(r, 0);
    expect(box.calls()).toEqual([...IP_CALLS_ENS3, "hostname vm1"]);
    expect(box.read("/etc/resolv.conf")).toBe(
      "# Written at boot by banger-network-bootstrap from /etc/banger-network.conf.\nnameserver 10.0.2.3\nnameserver 1.1.1.1\n",
    );
    expect(box.read("/etc/hostname")).toBe("vm1\n");
    // The old 127.0.1.1 line is replaced in place; the others are kept as they were.
    expect(box.read("/etc/hosts")).toBe("127.0.0.1\tlocalhost\n127.0.1.1\tvm1\n::1\tlocalhost ip6-localhost\n");
  });

  eachShell("resolv.conf that is a symlink (systemd-resolved) is replaced by a file", async (sh) => {
    const box = guest(CONF).stub("ip").stub("hostname");
    const target = box.path("/run/systemd/resolve/stub-resolv.conf");
    mkdirSync(join(target, ".."), { recursive: true });
    writeFileSync(target, "nameserver 127.0.0.53\n");
    symlinkSync("../run/systemd/resolve/stub-resolv.conf", box.path("/etc/resolv.conf"));
    const r = await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV });
    expectExit(r, 0);
    expect(lstatSync(box.path("/etc/resolv.conf")).isSymbolicLink()).toBe(false);
    expect(box.read("/etc/resolv.conf")).toContain("nameserver 10.0.2.3\n");
    // The link's old target is left alone.
    expect(box.read("/run/systemd/resolve/stub-resolv.conf")).toBe("nameserver 127.0.0.53\n");
    expect(r.stderr).toContain("symlink");
  });

  eachShell("no /etc/hosts: one is created with localhost and the hostname", async (sh) => {
    const box = guest(CONF).stub("ip").stub("hostname");
    rmSync(box.path("/etc/hosts"));
    expectExit(await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV }), 0);
    expect(box.read("/etc/hosts")).toBe("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tvm1\n");
  });

  eachShell("BANGER_IFACE picks that interface", async (sh) => {
    const box = guest(CONF + "BANGER_IFACE=bond0\n").stub("ip").stub("hostname");
    expectExit(await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV }), 0);
    expect(box.calls()).toContain("ip addr add 10.0.2.15/24 dev bond0");
  });

  eachShell("BANGER_MAC picks the interface with that address, in any letter case", async (sh) => {
    const box = guest(CONF + "BANGER_MAC=AA:BB:CC:DD:EE:FF\n").stub("ip").stub("hostname");
    expectExit(await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV }), 0);
    expect(box.calls()).toContain("ip addr add 10.0.2.15/24 dev bond0");
  });

  eachShell("a named interface that does not exist: error, lo still up, DNS still written", async (sh) => {
    const box = guest(CONF + "BANGER_IFACE=eth9\n").stub("ip").stub("hostname");
    const r = await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV });
    expectExit(r, 1);
    expect(r.stderr).toContain("no interface named eth9");
    expect(box.calls()).toEqual(["ip link set dev lo up", "hostname vm1"]);
    expect(box.read("/etc/resolv.conf")).toContain("nameserver 1.1.1.1");
  });

  eachShell("quoted values parse; malformed lines are reported and skipped, never run", async (sh) => {
    const box = guest("").stub("ip").stub("hostname");
    const canary = join(box.dir, "canary");
    box.write(
      "/etc/banger-network.conf",
      [
        "  BANGER_ADDRESS='10.0.2.15/24'  ",
        `BANGER_GATEWAY="10.0.2.2"\r`,
        `BANGER_HOSTNAME=$(touch ${canary})`,
        `BANGER_DNS="\`touch ${canary}\`"`,
        "BANGER_DNS=1.1.1.1 8.8.8.8",
        "just some words",
        "BANGER_HOSTNAME=-bad",
        "BANGER_ADDRESS=10.0.2.300/24",
        "BANGER_FUTURE=1",
        // Quoted, so well-formed; the glob must not expand to file names (then be rejected one by one).
        'BANGER_DNS="*"',
      ].join("\n"),
    );
    const r = await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV });
    expect(existsSync(canary)).toBe(false);
    expectExit(r, 1);
    expect(r.stderr).toContain("line 3 is not KEY=value");
    expect(r.stderr).toContain("line 4 is not KEY=value");
    expect(r.stderr).toContain("line 5 is not KEY=value");
    expect(r.stderr).toContain("line 6 is not KEY=value");
    expect(r.stderr).toContain("BANGER_HOSTNAME=-bad is not a valid host name");
    expect(r.stderr).toContain("BANGER_ADDRESS=10.0.2.300/24 is not an address/prefix-length");
    expect(r.stderr).toContain("unknown key BANGER_FUTURE: ignored");
    expect(r.stderr).toContain("BANGER_DNS: * is not an IP address");
    // The good lines still applied.
    expect(box.calls()).toEqual(IP_CALLS_ENS3);
  });

  eachShell("no ip, busybox with an ip applet: busybox ip, and says so", async (sh) => {
    const box = guest(CONF).stub("hostname").stub("busybox", `[ "$1" = --list ] && printf 'sh\\nip\\nhostname\\n'; exit 0`);
    const r = await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV });
    expectExit(r, 0);
    expect(r.stderr).toContain("no ip command: using busybox ip");
    const calls = box.calls().filter((c) => c !== "busybox --list");
    expect(calls).toEqual([...IP_CALLS_ENS3.map((c) => `busybox ${c}`), "hostname vm1"]);
  });

  eachShell("no ip, busybox without ip but with ifconfig/route: netmask from the prefix", async (sh) => {
    const conf = CONF.replace("10.0.2.15/24", "10.0.18.7/20");
    const box = guest(conf).stub("busybox", `[ "$1" = --list ] && printf 'sh\\nifconfig\\nroute\\nhostname\\n'; exit 0`);
    const r = await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV });
    expectExit(r, 0);
    expect(r.stderr).toContain("using busybox ifconfig and route");
    expect(box.calls().filter((c) => c !== "busybox --list")).toEqual([
      "busybox ifconfig lo up",
      "busybox ifconfig ens3 10.0.18.7 netmask 255.255.240.0 up",
      "busybox route del default",
      "busybox route add default gw 10.0.2.2 dev ens3",
      "busybox hostname vm1",
    ]);
  });

  eachShell("neither ip nor busybox: says the network is not configured, exit 1", async (sh) => {
    const box = guest(CONF);
    const r = await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV });
    expectExit(r, 1);
    expect(r.stderr).toContain("found neither ip (iproute2) nor busybox nor ifconfig/route: the network is NOT configured");
    // DNS and the hostname don't need those tools: still done, the hostname through /proc.
    expect(box.read("/etc/resolv.conf")).toContain("nameserver 10.0.2.3");
    expect(box.read("/proc/sys/kernel/hostname")).toBe("vm1\n");
    expect(box.read("/etc/hostname")).toBe("vm1\n");
  });

  eachShell("no NIC appears within BANGER_NET_WAIT: error names the problem", async (sh) => {
    const box = new Sandbox().linkTools(...BASE_TOOLS).stub("ip");
    box.write("/sys/class/net/lo/address", "00:00:00:00:00:00\n");
    box.write("/etc/banger-network.conf", "BANGER_ADDRESS=10.0.2.15/24\n");
    const r = await runScript(sh, SCRIPTS.network, box, { env: { BANGER_NET_WAIT: "1" } });
    expectExit(r, 1);
    expect(r.stderr).toContain("no network interface besides lo");
    expect(box.calls()).toEqual(["ip link set dev lo up"]);
  });

  eachShell("BANGER_AUTHORIZED_KEY lines: added to root's authorized_keys once, 0700/0600; a bad one is skipped", async (sh) => {
    const key1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMzU6iQY55XCxF67XfckbG2pPA3y7G+0YOIfQd60GJXq banger";
    const key2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 someone@host";
    const conf = `BANGER_AUTHORIZED_KEY="${key1}"\nBANGER_AUTHORIZED_KEY='${key2}'\nBANGER_AUTHORIZED_KEY="rm -rf / #"\n`;
    const box = guest(conf).linkTools("mkdir", "chmod", "grep").stub("ip").stub("hostname");
    box.write("/root/.ssh/authorized_keys", `${key2}\n`, 0o644);
    const r = await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV });
    expectExit(r, 1);
    expect(r.stderr).toContain("BANGER_AUTHORIZED_KEY is not an OpenSSH public key line: skipped");
    expect(r.stderr).toContain("authorized keys: 1 added");
    expect(box.read("/root/.ssh/authorized_keys")).toBe(`${key2}\n${key1}\n`);
    expect(lstatSync(box.path("/root/.ssh/authorized_keys")).mode & 0o777).toBe(0o600);
    expect(lstatSync(box.path("/root/.ssh")).mode & 0o777).toBe(0o700);
    // A second boot adds nothing.
    const again = await runScript(sh, SCRIPTS.network, box, { env: RUN_ENV });
    expect(again.stderr).toContain("authorized keys: 0 added");
    expect(box.read("/root/.ssh/authorized_keys")).toBe(`${key2}\n${key1}\n`);
  });
});
