// `banger image ...` through a real process (`bun src/cli/main.ts`), with every XDG dir in a
// temp dir. Images for list/show/ls/rm are made with `banger internal make-ext4` and registered
// in the store directly, so these tests do not depend on the pull's builder. The commands go the
// default way: the first starts a daemon on this temp dir's runtime dir, the rest talk to it;
// afterAll stops it (and it would stop by itself once its socket is gone with the temp dir).
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { daemonHealth } from "../../src/daemon/client/index.ts";
import { bangerPaths } from "../../src/daemon/paths.ts";
import { SqliteImageStore, type ImageRecord } from "../../src/daemon/store.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";

const REPO_ROOT = path.resolve(import.meta.dir, "../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-cli-image-"));
afterAll(async () => {
  await banger(["daemon", "stop"]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const env = {
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: path.join(tmp, "home"),
  XDG_STATE_HOME: path.join(tmp, "state"),
  XDG_CACHE_HOME: path.join(tmp, "cache"),
  XDG_CONFIG_HOME: path.join(tmp, "config"),
  XDG_RUNTIME_DIR: path.join(tmp, "run"),
};
const paths = bangerPaths(env);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function banger(args: string[], stdin?: string): Promise<Run> {
  const p = Bun.spawn([process.execPath, "src/cli/main.ts", ...args], {
    cwd: REPO_ROOT,
    env,
    stdin: stdin === undefined ? "ignore" : Bun.file(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

function rows(): ImageRecord[] {
  const s = SqliteImageStore.open(paths.dbPath);
  try {
    return s.list();
  } finally {
    s.close();
  }
}

function imagesDir(): string[] {
  return fs.existsSync(paths.imagesDir) ? fs.readdirSync(paths.imagesDir).sort() : [];
}

const tarFile = path.join(tmp, "rootfs.tar");
let alpine: ImageRecord;
let other: ImageRecord;

/** Makes an ext4 with the real writer and registers it as an image, as a pull would have. */
async function register(id: string, name: string, tar: string | null): Promise<ImageRecord> {
  const dir = path.join(paths.imagesDir, id);
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, "rootfs.ext4");
  if (tar) {
    const r = await banger(["internal", "make-ext4", "--rootfs-tar", tar, "--out", out, "--size", "16M"]);
    if (r.code !== 0) throw new Error(`make-ext4 failed: ${r.stderr}`);
  } else {
    fs.writeFileSync(out, "");
  }
  const rec: ImageRecord = {
    id,
    name,
    source: `rootfs:${tar ?? "/nowhere.tar"}`,
    digest: "sha256:" + id.padEnd(64, "0"),
    platform: "linux/amd64",
    rootfsPath: out,
    sizeBytes: fs.statSync(out).size,
    createdAt: `2026-01-0${id.endsWith("1") ? 1 : 2}T00:00:00.000Z`,
    env: ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
    cmd: ["/bin/sh"],
    entrypoint: null,
    workingDir: "/root",
    user: "",
    init: null,
    kernelCmdline: null,
    injected: [],
    workSeedPath: null,
    kernelRef: null,
  };
  const s = SqliteImageStore.open(paths.dbPath);
  s.insert(rec);
  s.close();
  return rec;
}

beforeAll(async () => {
  const t = new TarBuilder();
  t.dir("etc/", { mtime: 1_700_000_000 });
  t.file("etc/hostname", "box\n", { mode: 0o644, mtime: 1_700_000_000 });
  t.dir("home/", { mtime: 1_700_000_000 });
  t.dir("home/u/", { mode: 0o750, uid: 1000, gid: 1000, mtime: 1_700_000_000 });
  t.dir("usr/", { mtime: 1_700_000_000 });
  t.dir("usr/bin/", { mtime: 1_700_000_000 });
  t.file("usr/bin/su", "x".repeat(5000), { mode: 0o4755, mtime: 1_700_000_000 });
  t.dir("tmp/", { mode: 0o1777, mtime: 1_700_000_000 });
  t.symlink("bin", "usr/bin", { mtime: 1_700_000_000 });
  fs.writeFileSync(tarFile, t.end());
  alpine = await register("aaaa00000001", "alpine", tarFile);
  other = await register("bbbb00000002", "other", null);
}, 60_000);

test("--help works for every image command", async () => {
  for (const cmd of ["pull", "list", "show", "rm", "ls"]) {
    const r = await banger(["image", cmd, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith(`usage: banger image ${cmd}`);
    expect(r.stdout).toContain("--help");
  }
  const r = await banger(["image", "--help"]);
  expect(r.stdout).toContain("image pull");
  expect(r.stdout).toContain("image ls");
});

test("image list: a table, and --json an array of records with the pinned keys", async () => {
  const r = await banger(["image", "list"]);
  expect(r.code).toBe(0);
  const lines = r.stdout.trimEnd().split("\n");
  expect(lines[0]).toMatch(/^NAME\s+ID\s+PLATFORM\s+SIZE\s+CREATED\s+SOURCE$/);
  expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3))).toEqual([
    ["alpine", "aaaa00000001", "linux/amd64"],
    ["other", "bbbb00000002", "linux/amd64"],
  ]);
  const j = await banger(["image", "list", "--json"]);
  expect(j.code).toBe(0);
  const parsed = JSON.parse(j.stdout) as ImageRecord[];
  expect(parsed).toEqual([alpine, other]);
  expect(Object.keys(parsed[0]!).sort()).toEqual(
    ["id", "name", "source", "digest", "platform", "rootfsPath", "sizeBytes", "createdAt", "env", "cmd", "entrypoint", "workingDir", "user", "init", "kernelCmdline", "injected", "workSeedPath", "kernelRef"].sort(),
  );
});

test("image show: by name, id or id prefix; --json is the record", async () => {
  const j = await banger(["image", "show", "alpine", "--json"]);
  expect(j.code).toBe(0);
  expect(JSON.parse(j.stdout)).toEqual(alpine);
  const t = await banger(["image", "show", "aaaa0"]);
  expect(t.code).toBe(0);
  expect(t.stdout).toContain("name:       alpine\n");
  expect(t.stdout).toContain(`rootfs:     ${alpine.rootfsPath}\n`);
  expect(t.stdout).toContain("env:        PATH=/usr/bin:/bin\n            LANG=C.UTF-8\n");
  expect(JSON.parse((await banger(["image", "show", "bbbb00000002", "--json"])).stdout).name).toBe("other");
});

test("unknown names are one line on stderr and exit 1; usage errors exit 2", async () => {
  for (const cmd of [["show"], ["ls"], ["rm"]]) {
    const r = await banger(["image", ...cmd, "ghost"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`banger image ${cmd[0]}: image "ghost" not found; \`banger image list\` shows the images there are\n`);
  }
  const u = await banger(["image", "show"]);
  expect(u.code).toBe(2);
  expect(u.stderr).toStartWith("banger image show: missing <name|id>");
});

test("image ls: modes, owners, sizes, symlink targets; a file lists itself; --json", async () => {
  const r = await banger(["image", "ls", "alpine"]);
  expect(r.code).toBe(0);
  const lines = r.stdout.trimEnd().split("\n").map((l) => l.replace(/ +/g, " "));
  expect(lines.filter((l) => !l.endsWith("lost+found"))).toEqual([
    "lrwxrwxrwx 0/0 7 bin -> usr/bin",
    "drwxr-xr-x 0/0 4096 etc",
    "drwxr-xr-x 0/0 4096 home",
    "drwxrwxrwt 0/0 4096 tmp",
    "drwxr-xr-x 0/0 4096 usr",
  ]);
  expect((await banger(["image", "ls", "alpine", "/home"])).stdout.replace(/ +/g, " ")).toBe("drwxr-x--- 1000/1000 4096 u\n");
  expect((await banger(["image", "ls", "aaaa00000001", "usr/bin/su"])).stdout.replace(/ +/g, " ")).toBe("-rwsr-xr-x 0/0 5000 su\n");
  const j = await banger(["image", "ls", "alpine", "/etc", "--json"]);
  expect(JSON.parse(j.stdout)).toEqual([
    { name: "hostname", type: "file", mode: 0o100644, modeString: "-rw-r--r--", uid: 0, gid: 0, size: 4, mtime: "2023-11-14T22:13:20.000Z" },
  ]);
  const missing = await banger(["image", "ls", "alpine", "/nope"]);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toBe('banger image ls: image "alpine": no such file or directory: /nope\n');
});

test("image pull refuses a taken name and a bad name before reading the source, leaving nothing", async () => {
  const before = imagesDir();
  const taken = await banger(["image", "pull", `rootfs:${tarFile}`, "--name", "alpine"]);
  expect(taken.code).toBe(1);
  expect(taken.stderr).toBe(`banger image pull: image "alpine" already exists (id aaaa00000001, from rootfs:${tarFile}); remove it with \`banger image rm alpine\` or pick another --name\n`);
  const bad = await banger(["image", "pull", `rootfs:${tarFile}`, "--name", "Bad/Name"]);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toStartWith('banger image pull: invalid image name "Bad/Name": use lowercase letters');
  const usage = await banger(["image", "pull"]);
  expect(usage.code).toBe(2);
  expect(usage.stderr).toStartWith("banger image pull: missing <source>");
  expect(imagesDir()).toEqual(before);
  expect(rows().map((r) => r.name)).toEqual(["alpine", "other"]);
});

test("image pull: a source that fails after the staging dir exists leaves nothing", async () => {
  const empty = path.join(tmp, "empty.tar");
  fs.writeFileSync(empty, "");
  const before = imagesDir();
  const r = await banger(["image", "pull", `rootfs:${empty}`]);
  expect(r.code).toBe(1);
  expect(r.stderr.trimEnd().split("\n").at(-1)).toBe(`banger image pull: image "empty": rootfs:${empty}: empty input`);
  expect(imagesDir()).toEqual(before);
  expect(rows().length).toBe(2);
});

test("image pull: SIGINT while reading standard input exits 130 and leaves no staging dir and no row", async () => {
  const p = Bun.spawn([process.execPath, "src/cli/main.ts", "image", "pull", "-", "--name", "piped"], {
    cwd: REPO_ROOT,
    env,
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  // Some input, and the pipe kept open: the pull waits in the middle of spooling it.
  p.stdin.write(new Uint8Array(4096));
  await p.stdin.flush();
  const before = new Set([alpine.id, other.id]);
  // The pull is under way once the daemon (which the CLI streams its stdin to) holds the stdin
  // spool open: an unlinked file in the staging dir.
  const daemon = await daemonHealth(paths);
  expect(daemon.running).toBe(true);
  const spoolOpen = (dir: string): boolean =>
    fs.readdirSync(`/proc/${daemon.pid}/fd`).some((fd) => {
      try {
        const link = fs.readlinkSync(`/proc/${daemon.pid}/fd/${fd}`);
        return link.startsWith(`${dir}/`) && link.includes(".spool-") && link.endsWith(" (deleted)");
      } catch {
        return false;
      }
    });
  const deadline = Date.now() + 10_000;
  let staging: string | undefined;
  while (Date.now() < deadline && !staging) {
    staging = imagesDir().find((d) => d.endsWith(".staging") && !before.has(d));
    if (staging && !spoolOpen(path.join(paths.imagesDir, staging))) staging = undefined;
    if (!staging) await Bun.sleep(20);
  }
  expect(staging).toBeDefined();
  p.kill("SIGINT");
  const code = await Promise.race([p.exited, Bun.sleep(10_000).then(() => "timeout")]);
  if (code === "timeout") p.kill("SIGKILL");
  expect(code).toBe(130);
  expect(await new Response(p.stderr).text()).toContain('image "piped": pull of - interrupted; nothing was kept');
  expect(imagesDir()).toEqual([alpine.id, other.id].sort());
  expect(rows().map((r) => r.name)).toEqual(["alpine", "other"]);
}, 30_000);

test("image rm: removes the row and the directory; an unknown name among several removes nothing", async () => {
  const r1 = await banger(["image", "rm", "other", "ghost"]);
  expect(r1.code).toBe(1);
  expect(rows().map((r) => r.name)).toEqual(["alpine", "other"]);
  const r2 = await banger(["image", "rm", "other"]);
  expect(r2.code).toBe(0);
  expect(r2.stdout).toBe("removed other (bbbb00000002)\n");
  expect(rows().map((r) => r.name)).toEqual(["alpine"]);
  expect(imagesDir()).toEqual([alpine.id]);
});

test("image pull rootfs:FILE --json: publishes the image, and image ls reads the files back", async () => {
  const r = await banger(["image", "pull", `rootfs:${tarFile}`, "--name", "pulled", "--json"]);
  expect(r.code).toBe(0);
  const rec = JSON.parse(r.stdout) as ImageRecord;
  expect(rec.name).toBe("pulled");
  expect(rec.source).toBe(`rootfs:${tarFile}`);
  expect(fs.statSync(rec.rootfsPath).size).toBe(rec.sizeBytes);
  const ls = await banger(["image", "ls", "pulled", "/usr/bin"]);
  expect(ls.stdout.replace(/ +/g, " ")).toBe("-rwsr-xr-x 0/0 5000 su\n");
  expect(rows().some((x) => x.id === rec.id)).toBe(true);
  expect(imagesDir().some((d) => d.endsWith(".staging"))).toBe(false);
});

test("image pull: the image's /root becomes work-seed.ext4; an image without /root is published with a warning and no seed", async () => {
  // tarFile has no /root: a warning on stderr (it matters even with --json), no seed.
  const bare = await banger(["image", "pull", `rootfs:${tarFile}`, "--name", "bare", "--json"]);
  expect(bare.code, bare.stderr).toBe(0);
  expect(bare.stderr).toContain("warning: the image has no /root: no work seed was made");
  const bareRec = JSON.parse(bare.stdout) as ImageRecord;
  expect(bareRec.workSeedPath).toBeNull();
  expect(fs.existsSync(path.join(path.dirname(bareRec.rootfsPath), "work-seed.ext4"))).toBe(false);
  expect(bareRec.init).toBe("banger-init");
  expect(bareRec.injected).toContain("/root/.ssh/authorized_keys");

  const t = new TarBuilder();
  t.dir("root/", { mode: 0o700, mtime: 1_700_000_000 });
  t.file("root/.bashrc", "PS1='# '\n", { mode: 0o644, mtime: 1_700_000_000 });
  t.dir("root/.config/", { mode: 0o755, uid: 5, mtime: 1_700_000_000 });
  const withRoot = path.join(tmp, "with-root.tar");
  fs.writeFileSync(withRoot, t.end());
  const r = await banger(["image", "pull", `rootfs:${withRoot}`, "--name", "homey", "--json"]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).not.toContain("warning");
  const rec = JSON.parse(r.stdout) as ImageRecord;
  expect(rec.workSeedPath).toBe(path.join(path.dirname(rec.rootfsPath), "work-seed.ext4"));
  const { openExt4Image } = await import("../../src/ext4/read/index.ts");
  const seed = openExt4Image(rec.workSeedPath!);
  try {
    const root = seed.readTree();
    expect(root.mode).toBe(0o700);
    expect(new TextDecoder().decode(root.children!.get(".bashrc")!.bytes!)).toBe("PS1='# '\n");
    expect(root.children!.get(".config")!.uid).toBe(5);
    // banger's own key is in the seed too: the seed is /root as the image boots with it.
    expect(root.children!.get(".ssh")!.children!.has("authorized_keys")).toBe(true);
  } finally {
    seed.close();
  }
  const show = await banger(["image", "show", "homey"]);
  expect(show.stdout).toContain(`work seed:  ${rec.workSeedPath}`);
  expect(show.stdout).toMatch(/injected: +\/root\/\.ssh\/authorized_keys\n/);
});

test("image pull --kernel F --modules D: the files become a stored kernel (reused), below --kernel-ref in precedence", async () => {
  const boot = fs.existsSync("/boot") ? fs.readdirSync("/boot").filter((n) => /^vmlinuz-.*cloud/.test(n)).sort().at(-1) : undefined;
  if (!boot) {
    if (process.env.CI === "true") throw new Error("CI=true and no cloud kernel in /boot (.ci/run installs linux-image-cloud-amd64)");
    return; // outside CI: nothing to attach here
  }
  const version = boot.replace(/^vmlinuz-/, "");
  const kernel = path.join("/boot", boot);
  const modules = path.join("/lib/modules", version);
  const digest = new Bun.CryptoHasher("sha256").update(fs.readFileSync(kernel)).digest("hex").slice(0, 12);
  const a = await banger(["image", "pull", `rootfs:${tarFile}`, "--name", "with-kernel", "--kernel", kernel, "--modules", modules, "--json"]);
  expect(a.code, a.stderr).toBe(0);
  const rec = JSON.parse(a.stdout) as ImageRecord;
  expect(rec.kernelRef).toBe(`kernel-${digest}`);
  expect(rec.injected).toContain(`/lib/modules/${version}/kernel/net/vmw_vsock/vsock.ko`);
  const b = await banger(["image", "pull", `rootfs:${tarFile}`, "--name", "with-kernel-2", "--kernel", kernel, "--modules", modules, "--json"]);
  expect(b.code, b.stderr).toBe(0);
  const list = await banger(["kernel", "list", "--json"]);
  expect((JSON.parse(list.stdout) as { name: string }[]).map((k) => k.name)).toEqual([`kernel-${digest}`]);
  // --kernel-ref wins over --kernel (which is then not even registered); an unknown ref is one line.
  const c = await banger(["image", "pull", `rootfs:${tarFile}`, "--name", "with-ref", "--kernel-ref", `kernel-${digest}`, "--kernel", "/nonexistent", "--json"]);
  expect(c.code, c.stderr).toBe(0);
  expect((JSON.parse(c.stdout) as ImageRecord).kernelRef).toBe(`kernel-${digest}`);
  const d = await banger(["image", "pull", `rootfs:${tarFile}`, "--name", "bad-ref", "--kernel-ref", "nope"]);
  expect(d.code).toBe(1);
  expect(d.stderr).toContain('kernel "nope" is not in the store');
  expect(rows().some((r) => r.name === "bad-ref")).toBe(false);
}, 120_000);
