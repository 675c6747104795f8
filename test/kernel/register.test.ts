// `banger kernel register | list | show | rm` as a process, with Debian's real cloud kernel,
// its initrd and a small cut of its modules tree, every XDG dir in a temp dir. The image that
// refers to the kernel is a row inserted directly (pulling one with a kernel is another command's job).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { bangerPaths } from "../../src/daemon/paths.ts";
import { SqliteImageStore, type ImageRecord } from "../../src/daemon/store.ts";
import type { KernelRecord } from "../../src/daemon/kernel-store.ts";
import { testWith } from "../helpers/env.ts";
import { banger, CLOUD, CLOUD_ABSENT, REPO_ROOT, fakeBzImage, fakeModulesTree, listAll, sha256, smallModulesTree, snapshot, xdgEnv } from "./lib.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-kernel-register-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const env = xdgEnv(tmp);
const paths = bangerPaths(env);

function withStore<T>(fn: (s: SqliteImageStore) => T): T {
  const s = SqliteImageStore.open(paths.dbPath);
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

/** The store holds exactly these kernels, and no directory beyond theirs (no staging left). */
function expectStore(names: string[]): void {
  const rows = withStore((s) => s.database.query<{ name: string; id: string }, []>("SELECT name, id FROM kernels ORDER BY name").all());
  expect(rows.map((r) => r.name)).toEqual([...names].sort());
  const dirs = fs.existsSync(paths.kernelsDir) ? fs.readdirSync(paths.kernelsDir).sort() : [];
  expect(dirs).toEqual(rows.map((r) => r.id).sort());
}

function imageRow(id: string, name: string, kernelRef: string | null): void {
  const rec: ImageRecord = {
    id, name, source: "rootfs:/x.tar", digest: "sha256:" + "0".repeat(64), platform: "linux/amd64", rootfsPath: "/nowhere/rootfs.ext4",
    sizeBytes: 1, createdAt: "2026-01-01T00:00:00.000Z", env: [], cmd: null, entrypoint: null, workingDir: "", user: "",
    init: null, kernelCmdline: null, injected: [], workSeedPath: null, kernelRef: null,
  };
  withStore((s) => {
    s.insert(rec);
    s.database.query("UPDATE images SET kernel_ref = ? WHERE id = ?").run(kernelRef, id);
  });
}

const oneLine = (text: string) => text.trim().split("\n").length === 1;

describe("with Debian's cloud kernel", () => {
  let modules = "";
  let rec: KernelRecord;

  beforeAll(() => {
    if (CLOUD) modules = smallModulesTree(path.join(tmp, "mods"), CLOUD.modules, CLOUD.version);
  });

  testWith({ absent: CLOUD_ABSENT }, "register copies the kernel, initrd and modules tree (symlinks, modes) and reads the version from the bzImage header", async () => {
    const r = await banger(["kernel", "register", "--name", "cloud", "--kernel", CLOUD!.kernel, "--initrd", CLOUD!.initrd, "--modules", modules, "--json"], env);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    rec = JSON.parse(r.stdout);
    const dir = path.join(paths.kernelsDir, rec.id);
    expect(rec).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{12}$/),
      name: "cloud",
      // The header's release, as `uname -r` prints it: the package's /lib/modules name.
      version: path.basename(CLOUD!.modules),
      arch: "amd64",
      kernelPath: path.join(dir, "vmlinuz"),
      initrdPath: path.join(dir, "initrd.img"),
      modulesPath: path.join(dir, "modules", CLOUD!.version),
      source: `register:${CLOUD!.kernel}`,
      sha256: sha256(CLOUD!.kernel),
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(sha256(rec.kernelPath)).toBe(rec.sha256);
    expect(sha256(rec.initrdPath!)).toBe(sha256(CLOUD!.initrd));
    // The tree as it was: the dangling absolute `build` link, the relative one, a 0600 file, a 0750 dir.
    const copied = snapshot(rec.modulesPath!);
    expect(copied).toEqual(snapshot(modules));
    expect(copied).toContainEqual({ path: "build", type: "symlink", mode: 0o777, content: `/usr/src/linux-headers-${CLOUD!.version}` });
    expect(copied).toContainEqual({ path: "extra", type: "dir", mode: 0o750 });
    expect(copied.find((e) => e.path === "extra/private.conf")?.mode).toBe(0o600);
    expect(copied.some((e) => e.path === "kernel/drivers/virtio/virtio_pci.ko")).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "kernel.json"), "utf8"))).toEqual(rec);
    expect(fs.existsSync(path.join(dir, ".owner"))).toBe(false);
    expectStore(["cloud"]);
  }, 60_000);

  testWith({ absent: CLOUD_ABSENT }, "list and show, as text and as JSON; show takes an id prefix", async () => {
    const list = await banger(["kernel", "list", "--json"], env);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([rec]);
    const text = await banger(["kernel", "list"], env);
    expect(text.stdout.split("\n")[0]).toMatch(/^NAME +ID +VERSION +ARCH +INITRD +MODULES +CREATED +SOURCE$/);
    expect(text.stdout).toContain(`cloud  ${rec.id}  ${CLOUD!.version}  amd64`);
    const show = await banger(["kernel", "show", rec.id.slice(0, 6), "--json"], env);
    expect(JSON.parse(show.stdout)).toEqual(rec);
    const showText = await banger(["kernel", "show", "cloud"], env);
    expect(showText.stdout).toContain(`version:  ${CLOUD!.version}`);
    expect(showText.stdout).toContain(`sha256:   ${rec.sha256}`);
    expect(showText.stdout).toContain("used by:  -");
    const missing = await banger(["kernel", "show", "nope"], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('banger kernel show: kernel "nope" not found; `banger kernel list` shows the kernels there are\n');
  });

  testWith({ absent: CLOUD_ABSENT }, "the same name twice is refused before anything is copied", async () => {
    const r = await banger(["kernel", "register", "--name", "cloud", "--kernel", CLOUD!.kernel], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`kernel "cloud" already exists (id ${rec.id}`);
    expect(oneLine(r.stderr)).toBe(true);
    expectStore(["cloud"]);
  });

  testWith({ absent: CLOUD_ABSENT }, "rm is refused, naming the images, while an image row refers to the kernel; then it removes row and files", async () => {
    imageRow("aaaa00000001", "web", "cloud");
    imageRow("aaaa00000002", "db", rec.id);
    imageRow("aaaa00000003", "other", "another-kernel");
    const refused = await banger(["kernel", "rm", "cloud"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('banger kernel rm: kernel "cloud" is used by images db, web; remove them first (banger image rm db web)\n');
    expectStore(["cloud"]);
    expect(fs.existsSync(rec.kernelPath)).toBe(true);
    const show = await banger(["kernel", "show", "cloud"], env);
    expect(show.stdout).toContain("used by:  db, web");

    withStore((s) => {
      s.delete("aaaa00000001");
      s.delete("aaaa00000002");
    });
    const rm = await banger(["kernel", "rm", "cloud", "--json"], env);
    expect(rm.code).toBe(0);
    expect(JSON.parse(rm.stdout)).toEqual([rec]);
    expectStore([]);
    const again = await banger(["kernel", "rm", "cloud"], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('kernel "cloud" not found');
  });

  testWith({ absent: CLOUD_ABSENT }, "a modules tree of another release is refused, naming both; nothing is kept", async () => {
    const other = fakeModulesTree(path.join(tmp, "other"), "6.1.0-99-cloud-amd64");
    const r = await banger(["kernel", "register", "--name", "mixed", "--kernel", CLOUD!.kernel, "--modules", other], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`banger kernel register: kernel "mixed": ${CLOUD!.kernel} is kernel ${CLOUD!.version}, but the modules in ${other} are for 6.1.0-99-cloud-amd64\n`);
    expectStore([]);
  });

  testWith({ absent: CLOUD_ABSENT }, "the kernel alone registers too (no initrd, no modules)", async () => {
    const r = await banger(["kernel", "register", "--name", "bare", "--kernel", CLOUD!.kernel, "--json"], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: "bare", version: CLOUD!.version, initrdPath: null, modulesPath: null });
    expect((await banger(["kernel", "rm", "bare", "--quiet"], env)).stdout).toBe("");
    expectStore([]);
  });
});

describe("failures keep nothing", () => {
  const fake = path.join(tmp, "fake-vmlinuz");
  beforeAll(() => fs.writeFileSync(fake, fakeBzImage("6.9.0-fake (t) #1")));

  test("a modules tree holding a fifo fails mid-copy: one line, no staging directory, no row", async () => {
    const mods = fakeModulesTree(path.join(tmp, "fifo"), "6.9.0-fake");
    const fifo = path.join(mods, "kernel", "zz-pipe");
    Bun.spawnSync(["mkfifo", fifo]);
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    const r = await banger(["kernel", "register", "--name", "f", "--kernel", fake, "--initrd", fake, "--modules", mods], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`banger kernel register: kernel "f": ${fifo}: a fifo; only directories, regular files and symlinks are copied\n`);
    expectStore([]);
    expect(listAll(paths.kernelsDir)).toEqual([]);
  });

  test("inputs are checked before anything is written: not a kernel, a missing initrd, a tree without modules.dep, a bad name", async () => {
    const cases: [string[], string][] = [
      [["--kernel", path.join(tmp, "absent")], `kernel "x": ${path.join(tmp, "absent")}: no such file`],
      [["--kernel", path.join(REPO_ROOT, "README.md")], "not a kernel image banger knows"],
      [["--kernel", fake, "--initrd", path.join(tmp, "no-initrd")], `kernel "x": initrd ${path.join(tmp, "no-initrd")}: no such file`],
      [["--kernel", fake, "--modules", tmp], "no modules.dep found"],
    ];
    for (const [args, message] of cases) {
      const r = await banger(["kernel", "register", "--name", "x", ...args], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(message);
      expect(oneLine(r.stderr)).toBe(true);
    }
    const bad = await banger(["kernel", "register", "--name", "Bad Name", "--kernel", fake], env);
    expect(bad.stderr).toContain('invalid kernel name "Bad Name"');
    expectStore([]);
    expect(fs.existsSync(paths.kernelsDir) ? fs.readdirSync(paths.kernelsDir) : []).toEqual([]);
  });

  test("a staging directory a killed register left behind is cleared by the next kernel command", async () => {
    fs.mkdirSync(path.join(paths.kernelsDir, "0123456789ab.staging"), { recursive: true });
    fs.writeFileSync(path.join(paths.kernelsDir, "0123456789ab.staging", ".owner"), JSON.stringify({ pid: 2 ** 22 + 1, start: "1" }));
    const r = await banger(["kernel", "list", "--json"], env);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("removed an abandoned staging directory");
    expect(fs.readdirSync(paths.kernelsDir)).toEqual([]);
  });
});
