// Shared helpers for the tar tests: reading a node's bytes back through its ByteSource,
// comparing a loaded tree with a real directory, temp dirs.

import { expect } from "bun:test";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, type Stats } from "node:fs";
import { join } from "node:path";
import type { ByteSource, FsNode } from "../../src/tree/types.ts";
import { bytesToName, displayName } from "../../src/tree/names.ts";

export const BUN = process.execPath;

export function tempDir(tag: string): string {
  return mkdtempSync(join(process.env.TMPDIR ?? "/tmp", `banger-tar-${tag}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A file node's content, rebuilt from its source and runs (blocks outside runs are zeros). */
export function readNodeData(sources: ByteSource[], node: FsNode): Uint8Array {
  const out = new Uint8Array(node.size);
  if (node.size === 0) return out;
  if (node.bytes) return node.bytes;
  const data = node.data!;
  const src = sources[data.source]!;
  const runs = data.runs ?? [0, Math.ceil(node.size / 4096)];
  for (let i = 0; i < runs.length; i += 2) {
    const start = runs[i]! * 4096;
    const end = Math.min((runs[i]! + runs[i + 1]!) * 4096, node.size);
    src.readInto(out.subarray(start, end), data.offset + start);
  }
  return out;
}

/** Node at a "/"-joined byte-string path ("" = root). */
export function nodeAt(root: FsNode, path: string): FsNode | undefined {
  let n: FsNode | undefined = root;
  for (const c of path.split("/").filter((x) => x !== "")) {
    n = n?.children?.get(c);
  }
  return n;
}

/** Expected non-zero runs of `content` by the 4 KiB block rule, or undefined when no block is zero. */
export function expectedRuns(content: Uint8Array): number[] | undefined {
  const runs: number[] = [];
  let anyZero = false;
  let start = -1;
  const blocks = Math.ceil(content.length / 4096);
  for (let b = 0; b < blocks; b += 1) {
    const slice = content.subarray(b * 4096, Math.min((b + 1) * 4096, content.length));
    const zero = slice.every((x) => x === 0);
    if (zero) {
      anyZero = true;
      if (start >= 0) runs.push(start, b - start);
      start = -1;
    } else if (start < 0) start = b;
  }
  if (start >= 0) runs.push(start, blocks - start);
  return anyZero ? runs : undefined;
}

function kindOf(st: Stats): FsNode["kind"] {
  if (st.isDirectory()) return "dir";
  if (st.isFile()) return "file";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "chardev";
  if (st.isBlockDevice()) return "blockdev";
  if (st.isFIFO()) return "fifo";
  return "socket";
}

export interface CompareOptions {
  /** Compare nanoseconds of mtime (PAX); else whole seconds (floor). */
  nanoseconds: boolean;
  /** Compare xattrs with this reader (path → map); omit to expect none. */
  xattrs?: (path: string) => Map<string, Uint8Array>;
  /** Skip the root's metadata (when the tar does not list "."). */
  skipRoot?: boolean;
}

/**
 * Asserts that `root` holds exactly what directory `dir` holds: kinds, modes, owners, mtimes,
 * sizes, content (through `sources`), link targets, device numbers, hardlink identity, xattrs.
 */
export function expectTreeMatchesDir(root: FsNode, sources: ByteSource[], dir: string, opts: CompareOptions): number {
  const byIno = new Map<bigint, FsNode>();
  let count = 0;
  const visit = (fsPath: Buffer, node: FsNode, rel: string): void => {
    count += 1;
    const st = lstatSync(fsPath, { bigint: true });
    const where = `at "${displayName(rel) || "/"}"`;
    expect(`${node.kind} ${where}`).toBe(`${kindOf(lstatSync(fsPath))} ${where}`);
    if (!(rel === "" && opts.skipRoot)) {
      expect(`mode ${(node.mode).toString(8)} ${where}`).toBe(`mode ${(Number(st.mode) & 0o7777).toString(8)} ${where}`);
      expect(`owner ${node.uid}:${node.gid} ${where}`).toBe(`owner ${st.uid}:${st.gid} ${where}`);
      const ns = st.mtimeNs;
      let sec = ns / 1_000_000_000n;
      let nsec = ns % 1_000_000_000n;
      if (nsec < 0n) {
        nsec += 1_000_000_000n;
        sec -= 1n;
      }
      const want = opts.nanoseconds ? { sec: Number(sec), nsec: Number(nsec) } : { sec: Number(sec), nsec: 0 };
      expect({ where, mtime: node.mtime }).toEqual({ where, mtime: want });
      if (opts.xattrs) {
        const got = [...node.xattrs].map(([k, v]) => `${k}=${Buffer.from(v).toString("hex")}`).sort();
        const exp = [...opts.xattrs(fsPath.toString("latin1"))].map(([k, v]) => `${k}=${Buffer.from(v).toString("hex")}`).sort();
        expect({ where, xattrs: got }).toEqual({ where, xattrs: exp });
      } else {
        expect({ where, xattrs: node.xattrs.size }).toEqual({ where, xattrs: 0 });
      }
    }
    if (node.kind !== "dir") {
      const seen = byIno.get(st.ino);
      if (seen) expect(seen === node).toBe(true);
      else byIno.set(st.ino, node);
    }
    switch (node.kind) {
      case "file": {
        expect(node.size).toBe(Number(st.size));
        const want = new Uint8Array(readFileSync(fsPath));
        const got = readNodeData(sources, node);
        expect(Buffer.compare(got, want)).toBe(0);
        const runs = expectedRuns(want);
        if (node.size > 0) expect({ where, runs: node.data!.runs ? [...node.data!.runs] : undefined }).toEqual({ where, runs });
        break;
      }
      case "symlink":
        expect(node.target).toBe(readlinkSync(fsPath, { encoding: "buffer" }).toString("latin1"));
        break;
      case "chardev":
      case "blockdev": {
        const rdev = Number(st.rdev);
        expect([node.major, node.minor]).toEqual([(rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00)]);
        break;
      }
      case "dir": {
        const names = readdirSync(fsPath, { encoding: "buffer" }).map((b) => bytesToName(b)).sort();
        expect({ where, names: [...node.children!.keys()].sort() }).toEqual({ where, names });
        for (const name of names) {
          visit(Buffer.concat([fsPath, Buffer.from("/"), Buffer.from(name, "latin1")]), node.children!.get(name)!, rel === "" ? name : `${rel}/${name}`);
        }
        break;
      }
      default:
        break;
    }
  };
  visit(Buffer.from(dir), root, "");
  return count;
}

/** xattrs of a path through getfattr (hex values), including system.posix_acl_*. */
export function getfattr(path: string): Map<string, Uint8Array> {
  const r = Bun.spawnSync(["getfattr", "--absolute-names", "-h", "-d", "-m", "-", "-e", "hex", path]);
  const out = new Map<string, Uint8Array>();
  for (const line of r.stdout.toString().split("\n")) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line) ?? /^([^#=][^=]*)=""$/.exec(line) ?? /^([^#=][^=]*)$/.exec(line);
    if (!m || line === "") continue;
    out.set(m[1]!, new Uint8Array(Buffer.from(m[2] ?? "", "hex")));
  }
  return out;
}

export function run(cmd: string[], opts: { cwd?: string } = {}): string {
  const r = Bun.spawnSync(cmd, { cwd: opts.cwd, stderr: "pipe", stdout: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}): ${r.stderr.toString()}`);
  return r.stdout.toString();
}
