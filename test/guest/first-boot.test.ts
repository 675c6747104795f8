// banger-first-boot under dash and busybox sh: the package manager chosen for every os-release
// ID the script knows, ID_LIKE fallback, unknown distros, the sshd steps on systemd and
// banger-init guests, and that the marker goes only on success. Package managers, ssh-keygen
// and systemctl are stubs that record their arguments; a "successful" install creates a fake
// /usr/sbin/sshd in the temp root.
import { describe, expect } from "bun:test";
import { rmSync } from "node:fs";
import { eachShell, expectExit, runScript, Sandbox, SCRIPTS } from "./lib.ts";

const MARKER = "/var/lib/banger/first-boot-pending";

// Creates the fake sshd the way a real install would.
const MAKE_SSHD = `mkdir -p "$BANGER_ROOT/usr/sbin" && printf '#!/bin/sh\\n' >"$BANGER_ROOT/usr/sbin/sshd" && chmod 755 "$BANGER_ROOT/usr/sbin/sshd"`;

function guest(osRelease: string | null): Sandbox {
  const box = new Sandbox().linkTools("mkdir", "chmod", "rm");
  box.write(MARKER, "");
  if (osRelease !== null) box.write("/etc/os-release", osRelease);
  box.stub("ssh-keygen").stub("systemctl");
  return box;
}

interface Family {
  /** The stub that must be called, and the calls it must get. */
  tool: string;
  calls: string[];
  ids: string[];
}

const FAMILIES: Family[] = [
  {
    tool: "apt-get",
    calls: ["apt-get update", "apt-get install -y openssh-server"],
    ids: ["debian", "ubuntu", "kali", "raspbian", "linuxmint", "pop"],
  },
  { tool: "apk", calls: ["apk add --no-cache openssh"], ids: ["alpine"] },
  { tool: "dnf", calls: ["dnf install -y openssh-server"], ids: ["fedora", "rhel", "centos", "rocky", "almalinux"] },
  { tool: "pacman", calls: ["pacman -Sy --noconfirm openssh"], ids: ["arch", "archlinux", "manjaro"] },
  {
    tool: "zypper",
    calls: ["zypper --non-interactive install openssh-server"],
    ids: ["opensuse", "opensuse-leap", "opensuse-tumbleweed", "suse", "sles"],
  },
];

/** Stubs every package manager; only `tool` installs sshd, the others would fail loudly. */
function stubPackageManagers(box: Sandbox, tool: string): void {
  for (const f of FAMILIES) {
    if (f.tool === tool) {
      // apt-get also records what a Debian install would see: the frontend and policy-rc.d.
      const extra =
        tool === "apt-get"
          ? `printf 'env DEBIAN_FRONTEND=%s policy-rc.d=%s\\n' "$DEBIAN_FRONTEND" "$([ -x "$BANGER_ROOT/usr/sbin/policy-rc.d" ] && "$BANGER_ROOT/usr/sbin/policy-rc.d"; echo $?)" >>"$BANGER_TEST_LOG"\n[ "$1" = install ] && ${MAKE_SSHD}\nexit 0`
          : `${MAKE_SSHD}`;
      box.stub(f.tool, extra);
    } else {
      box.stub(f.tool, "exit 99");
    }
  }
}

describe("banger-first-boot", () => {
  eachShell("no marker: exits 0 and does nothing", async (sh) => {
    const box = guest("ID=debian\n");
    box.stub("apt-get", "exit 99");
    rmSync(box.path(MARKER));
    const r = await runScript(sh, SCRIPTS.firstBoot, box);
    expectExit(r, 0);
    expect(box.calls()).toEqual([]);
    expect(r.stderr).toBe("");
  });

  for (const fam of FAMILIES) {
    for (const id of fam.ids) {
      eachShell(`ID=${id}: installs with ${fam.tool}, keys, /run/sshd, marker removed`, async (sh) => {
        // Quoted and unquoted values both occur in real os-release files.
        const box = guest(`NAME="Some Linux"\nID=${id === "rhel" ? '"rhel"' : id}\nVERSION_ID="1"\n`);
        stubPackageManagers(box, fam.tool);
        const r = await runScript(sh, SCRIPTS.firstBoot, box);
        expectExit(r, 0);
        const calls = box.calls();
        for (const c of fam.calls) expect(calls).toContain(c);
        expect(calls.filter((c) => c.startsWith(fam.tool + " "))).toEqual(fam.calls);
        expect(calls).toContain(`ssh-keygen -A -f ${box.root}`);
        // Not a systemd guest (no /run/systemd/system): nothing to enable.
        expect(calls.some((c) => c.startsWith("systemctl"))).toBe(false);
        expect(box.exists("/run/sshd")).toBe(true);
        expect(box.exists(MARKER)).toBe(false);
        if (fam.tool === "apt-get") {
          // Non-interactive, and service starts blocked (policy-rc.d exits 101) during the install...
          expect(calls).toContain("env DEBIAN_FRONTEND=noninteractive policy-rc.d=101");
          // ...and the policy file is gone afterwards.
          expect(box.exists("/usr/sbin/policy-rc.d")).toBe(false);
        }
      });
    }
  }

  eachShell("an image's own policy-rc.d is left in place", async (sh) => {
    const box = guest("ID=debian\n");
    stubPackageManagers(box, "apt-get");
    box.write("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 0\n", 0o755);
    expectExit(await runScript(sh, SCRIPTS.firstBoot, box), 0);
    expect(box.read("/usr/sbin/policy-rc.d")).toBe("#!/bin/sh\nexit 0\n");
  });

  eachShell("unknown ID, known ID_LIKE word: falls back to ID_LIKE (amzn -> dnf)", async (sh) => {
    const box = guest('ID="amzn"\nID_LIKE="centos rhel fedora"\n');
    stubPackageManagers(box, "dnf");
    expectExit(await runScript(sh, SCRIPTS.firstBoot, box), 0);
    expect(box.calls()).toContain("dnf install -y openssh-server");
    expect(box.exists(MARKER)).toBe(false);
  });

  eachShell("ID_LIKE is tried word by word (second word known)", async (sh) => {
    const box = guest("ID=myos\nID_LIKE='somethingelse ubuntu'\n");
    stubPackageManagers(box, "apt-get");
    expectExit(await runScript(sh, SCRIPTS.firstBoot, box), 0);
    expect(box.calls()).toContain("apt-get install -y openssh-server");
  });

  eachShell("unknown distro: clear message, exit 1, marker kept, no package manager run", async (sh) => {
    const box = guest("ID=plan9\nID_LIKE=bell-labs\n");
    stubPackageManagers(box, "none");
    const r = await runScript(sh, SCRIPTS.firstBoot, box);
    expectExit(r, 1);
    expect(r.stderr).toContain("no known package manager for ID=plan9 ID_LIKE=bell-labs");
    expect(r.stderr).toContain("install openssh-server in the image");
    expect(box.calls()).toEqual([]);
    expect(box.exists(MARKER)).toBe(true);
  });

  eachShell("no os-release at all: treated as unknown", async (sh) => {
    const box = guest(null);
    const r = await runScript(sh, SCRIPTS.firstBoot, box);
    expectExit(r, 1);
    expect(r.stderr).toContain("no known package manager for ID=? ID_LIKE=?");
    expect(box.exists(MARKER)).toBe(true);
  });

  eachShell("/usr/lib/os-release is read when /etc/os-release is missing", async (sh) => {
    const box = guest(null);
    box.write("/usr/lib/os-release", "ID=alpine\n");
    stubPackageManagers(box, "apk");
    expectExit(await runScript(sh, SCRIPTS.firstBoot, box), 0);
    expect(box.calls()).toContain("apk add --no-cache openssh");
  });

  eachShell("package manager fails: exit 1, marker kept for the next boot", async (sh) => {
    const box = guest("ID=debian\n");
    box.stub("apt-get", `[ "$1" = update ] && exit 100; exit 0`);
    const r = await runScript(sh, SCRIPTS.firstBoot, box);
    expectExit(r, 1);
    expect(box.calls()).toEqual(["apt-get update"]);
    expect(r.stderr).toContain("installing OpenSSH with apt failed; will retry next boot");
    expect(box.exists(MARKER)).toBe(true);
    expect(box.exists("/usr/sbin/policy-rc.d")).toBe(false);
  });

  eachShell("package manager succeeds but leaves no sshd: exit 1, marker kept", async (sh) => {
    const box = guest("ID=fedora\n");
    box.stub("dnf", "exit 0");
    const r = await runScript(sh, SCRIPTS.firstBoot, box);
    expectExit(r, 1);
    expect(r.stderr).toContain("/usr/sbin/sshd is still missing");
    expect(box.exists(MARKER)).toBe(true);
  });

  eachShell("the package manager the ID wants is not installed: exit 1, marker kept", async (sh) => {
    const box = guest("ID=arch\n");
    const r = await runScript(sh, SCRIPTS.firstBoot, box);
    expectExit(r, 1);
    expect(r.stderr).toContain("wants pacman, which is not installed");
    expect(box.exists(MARKER)).toBe(true);
  });

  eachShell("dnf missing, yum present: yum", async (sh) => {
    const box = guest("ID=centos\n");
    box.stub("yum", MAKE_SSHD);
    expectExit(await runScript(sh, SCRIPTS.firstBoot, box), 0);
    expect(box.calls()).toContain("yum install -y openssh-server");
  });

  eachShell("zypper: openssh when openssh-server is not a package there", async (sh) => {
    const box = guest('ID="opensuse-leap"\n');
    box.stub("zypper", `[ "$3" = openssh-server ] && exit 104\n${MAKE_SSHD}`);
    expectExit(await runScript(sh, SCRIPTS.firstBoot, box), 0);
    expect(box.calls().filter((c) => c.startsWith("zypper"))).toEqual([
      "zypper --non-interactive install openssh-server",
      "zypper --non-interactive install openssh",
    ]);
  });

  eachShell("sshd present, banger-init guest: keys and /run/sshd only, no install", async (sh) => {
    const box = guest("ID=debian\n");
    box.write("/usr/sbin/sshd", "#!/bin/sh\n", 0o755);
    box.stub("apt-get", "exit 99");
    const r = await runScript(sh, SCRIPTS.firstBoot, box);
    expectExit(r, 0);
    expect(box.calls()).toEqual([`ssh-keygen -A -f ${box.root}`]);
    expect(box.exists("/run/sshd")).toBe(true);
    expect(box.exists(MARKER)).toBe(false);
  });

  eachShell("sshd present, systemd guest with ssh.service: enabled and start queued", async (sh) => {
    const box = guest("ID=debian\n");
    box.write("/usr/sbin/sshd", "#!/bin/sh\n", 0o755);
    box.mkdir("/run/systemd/system");
    box.write("/lib/systemd/system/ssh.service", "[Service]\n");
    // Debian's alias; ssh.service must win.
    box.write("/etc/systemd/system/sshd.service", "[Service]\n");
    expectExit(await runScript(sh, SCRIPTS.firstBoot, box), 0);
    expect(box.calls()).toEqual([`ssh-keygen -A -f ${box.root}`, "systemctl enable ssh.service", "systemctl start --no-block ssh.service"]);
    expect(box.exists(MARKER)).toBe(false);
  });

  eachShell("systemd guest with only sshd.service (Fedora, Arch): sshd.service", async (sh) => {
    const box = guest("ID=fedora\n");
    stubPackageManagers(box, "dnf");
    box.mkdir("/run/systemd/system");
    box.write("/usr/lib/systemd/system/sshd.service", "[Service]\n");
    expectExit(await runScript(sh, SCRIPTS.firstBoot, box), 0);
    expect(box.calls().slice(-2)).toEqual(["systemctl enable sshd.service", "systemctl start --no-block sshd.service"]);
  });

  eachShell("systemd guest without any ssh unit: exit 1, marker kept", async (sh) => {
    const box = guest("ID=debian\n");
    box.write("/usr/sbin/sshd", "#!/bin/sh\n", 0o755);
    box.mkdir("/run/systemd/system");
    const r = await runScript(sh, SCRIPTS.firstBoot, box);
    expectExit(r, 1);
    expect(r.stderr).toContain("neither ssh.service nor sshd.service exists");
    expect(box.exists(MARKER)).toBe(true);
  });

  eachShell("ssh-keygen fails: exit 1, marker kept", async (sh) => {
    const box = guest("ID=debian\n");
    box.write("/usr/sbin/sshd", "#!/bin/sh\n", 0o755);
    box.stub("ssh-keygen", "exit 1");
    expectExit(await runScript(sh, SCRIPTS.firstBoot, box), 1);
    expect(box.exists(MARKER)).toBe(true);
  });
});
