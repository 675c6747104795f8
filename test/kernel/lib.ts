// Shared by the kernel tests: Debian's cloud kernel (package linux-image-cloud-amd64) where it is
// installed, a small modules tree cut from it, synthetic kernels for the cases a real one cannot
// show, a snapshot of a directory tree to compare copies with, and `banger` as a process.
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { ZstdCompressor } from "../../src/bundle/zstd-compress.ts";

export const REPO_ROOT = path.resolve(import.meta.dir, "../..");

export interface CloudKernel {
  kernel: string;
  initrd: string;
  /** /lib/modules/<version> */
  modules: string;
  /** The package's release, from its file names (vmlinuz-<version>): what `uname -r` prints when it runs. */
  version: string;
}

/** The newest cloud kernel with its initrd and modules, or null when the package is not installed. */
export function debianCloudKernel(): CloudKernel | null {
  let names: string[];
  try {
    names = fs.readdirSync("/boot");
  } catch {
    return null;
  }
  const versions = names
    .map((n) => /^vmlinuz-(.*cloud.*)$/.exec(n)?.[1])
    .filter((v): v is string => v !== undefined)
    .filter((v) => names.includes(`initrd.img-${v}`) && fs.existsSync(`/lib/modules/${v}/modules.dep`))
    .sort();
  const v = versions.at(-1);
  return v ? { kernel: `/boot/vmlinuz-${v}`, initrd: `/boot/initrd.img-${v}`, modules: `/lib/modules/${v}`, version: v } : null;
}

export const CLOUD = debianCloudKernel();
/** Why the real-kernel tests cannot run here, or null. */
export const CLOUD_ABSENT = CLOUD ? null : "no Debian cloud kernel (/boot/vmlinuz-*cloud*, its initrd and /lib/modules/<version>/modules.dep; .ci/run installs linux-image-cloud-amd64)";

/**
 * A small copy of a modules tree at `<root>/lib/modules/<version>`: kernel/drivers/virtio and the
 * modules.* indexes, plus what a copy must keep: a dangling absolute symlink (build), a relative
 * one inside the tree, a 0600 file and a 0750 directory.
 */
export function smallModulesTree(root: string, from: string, version: string): string {
  const dir = path.join(root, "lib", "modules", version);
  fs.mkdirSync(path.join(dir, "kernel", "drivers"), { recursive: true });
  fs.cpSync(path.join(from, "kernel", "drivers", "virtio"), path.join(dir, "kernel", "drivers", "virtio"), { recursive: true, preserveTimestamps: true });
  for (const f of fs.readdirSync(from)) if (f.startsWith("modules.")) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  fs.symlinkSync(`/usr/src/linux-headers-${version}`, path.join(dir, "build"));
  fs.symlinkSync("kernel/drivers/virtio", path.join(dir, "virtio"));
  fs.mkdirSync(path.join(dir, "extra"), { mode: 0o750 });
  fs.chmodSync(path.join(dir, "extra"), 0o750);
  fs.writeFileSync(path.join(dir, "extra", "private.conf"), "options x y=1\n", { mode: 0o600 });
  fs.chmodSync(path.join(dir, "extra", "private.conf"), 0o600);
  return dir;
}

/** A made-up modules tree: modules.dep and one module file. */
export function fakeModulesTree(root: string, version: string): string {
  const dir = path.join(root, "lib", "modules", version);
  fs.mkdirSync(path.join(dir, "kernel"), { recursive: true });
  fs.writeFileSync(path.join(dir, "kernel", "fake.ko"), "not really a module\n");
  fs.writeFileSync(path.join(dir, "modules.dep"), "kernel/fake.ko:\n");
  return dir;
}

/**
 * The smallest file the boot protocol calls a bzImage: boot_flag, "HdrS", protocol 2.15, a
 * kernel_version pointer to `versionString` inside the setup sectors, xloadflags 64-bit.
 */
export function fakeBzImage(versionString: string, opts: { is64?: boolean; pointer?: number } = {}): Uint8Array {
  const b = new Uint8Array(8192);
  const dv = new DataView(b.buffer);
  b[0x1f1] = 3; // setup sectors: the string must lie inside them
  dv.setUint16(0x1fe, 0xaa55, true);
  b.set(new TextEncoder().encode("HdrS"), 0x202);
  dv.setUint16(0x206, 0x020f, true);
  dv.setUint16(0x20e, opts.pointer ?? 0x100, true);
  dv.setUint16(0x236, opts.is64 === false ? 0 : 1, true);
  b.set(new TextEncoder().encode(versionString), 0x300);
  return b;
}

/** An ELF64 little-endian header for `machine`, padded, with `banner` at `bannerAt` (linux_banner). */
export function fakeVmlinux(machine: number, banner: string | null, size = 64 << 10, bannerAt = 4096): Uint8Array {
  const b = new Uint8Array(size);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  new DataView(b.buffer).setUint16(18, machine, true);
  if (banner !== null) b.set(new TextEncoder().encode(`${banner}\n\0`), bannerAt);
  return b;
}

export interface TreeEntry {
  path: string;
  type: "dir" | "file" | "symlink";
  mode: number;
  /** sha256 of a file, the target of a symlink. */
  content?: string;
}

/** Every entry below `dir`, sorted: type, permission bits, content hash or link target. */
export function snapshot(dir: string): TreeEntry[] {
  const out: TreeEntry[] = [];
  const walk = (d: string, rel: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(p);
      if (st.isDirectory()) {
        out.push({ path: r, type: "dir", mode: st.mode & 0o7777 });
        walk(p, r);
      } else if (st.isSymbolicLink()) {
        out.push({ path: r, type: "symlink", mode: 0o777, content: fs.readlinkSync(p) });
      } else {
        out.push({ path: r, type: "file", mode: st.mode & 0o7777, content: sha256(fs.readFileSync(p)) });
      }
    }
  };
  walk(dir, "");
  return out;
}

export function sha256(bytes: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha256").update(typeof bytes === "string" ? fs.readFileSync(bytes) : bytes).digest("hex");
}

export function zstd(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  const z = new ZstdCompressor({ level: 3 }, (p) => parts.push(p.slice()));
  z.write(bytes);
  z.end();
  return new Uint8Array(Buffer.concat(parts));
}

/** XDG dirs under `root`, as a `banger` process's whole environment. */
export function xdgEnv(root: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: path.join(root, "home"),
    XDG_STATE_HOME: path.join(root, "state"),
    XDG_CACHE_HOME: path.join(root, "cache"),
    XDG_CONFIG_HOME: path.join(root, "config"),
    XDG_RUNTIME_DIR: path.join(root, "run"),
  };
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function banger(args: string[], env: Record<string, string>): Promise<Run> {
  const p = Bun.spawn([process.execPath, "src/cli/main.ts", ...args], { cwd: REPO_ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** Every name below `dir` (recursively), for "nothing was left behind". */
export function listAll(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

export interface FileServer {
  /** URL of `file` (a path starting with "/"). */
  url(file: string): string;
  files: Map<string, Uint8Array>;
  /** Each request's path and Range header, in order. */
  requests: { path: string; range: string | null }[];
  /** The next `count` answers for `file` declare the whole length but send half, then close the connection (FIN). */
  cut(file: string, count: number): void;
  stop(): Promise<void>;
}

/**
 * A loopback HTTP/1.1 file server on a raw socket, so an answer can be cut mid-body exactly as a
 * dropped connection cuts it (Content-Length promised, fewer bytes, then FIN). Honours
 * `Range: bytes=N-` with 206 and Content-Range.
 */
export async function fileServer(): Promise<FileServer> {
  const files = new Map<string, Uint8Array>();
  const requests: FileServer["requests"] = [];
  const cuts = new Map<string, number>();
  const server = net.createServer((sock) => {
    let head = Buffer.alloc(0);
    sock.on("error", () => {});
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      sock.off("data", onData);
      const [line, ...lines] = head.subarray(0, end).toString("latin1").split("\r\n");
      const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      const p = new URL(line!.split(" ")[1]!, "http://x").pathname;
      const range = headers.get("range") ?? null;
      requests.push({ path: p, range });
      const bytes = files.get(p);
      if (!bytes) {
        sock.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
      }
      const from = range ? Number(/^bytes=(\d+)-$/.exec(range)?.[1] ?? 0) : 0;
      const body = bytes.subarray(from);
      let h = `HTTP/1.1 ${range ? "206 Partial Content" : "200 OK"}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n`;
      if (range) h += `Content-Range: bytes ${from}-${bytes.length - 1}/${bytes.length}\r\n`;
      sock.write(h + "\r\n");
      const left = cuts.get(p) ?? 0;
      if (left > 0) {
        cuts.set(p, left - 1);
        // end, not destroy: every byte sent arrives before the FIN, so the client has exactly half.
        sock.end(body.subarray(0, body.length >> 1));
      } else {
        sock.end(body);
      }
    };
    sock.on("data", onData);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: (file) => `http://127.0.0.1:${port}${file}`,
    files,
    requests,
    cut: (file, count) => void cuts.set(file, count),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
