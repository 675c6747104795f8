// Copying a directory tree as it is: directories, regular files and symlinks, with their
// permission bits and modification times; symlinks are copied as links (never followed), so a
// kernel's modules tree keeps its `build -> /usr/src/...` links as the package made them.
// Anything else (devices, fifos, sockets) is an error: such a tree is not what the caller
// thinks it is. Hard links become separate files.
import fs from "node:fs";
import path from "node:path";

export interface CopyTreeResult {
  files: number;
  dirs: number;
  symlinks: number;
  /** Bytes of regular file data copied. */
  bytes: number;
}

function kindOf(st: fs.Stats): string {
  if (st.isCharacterDevice()) return "character device";
  if (st.isBlockDevice()) return "block device";
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  return "special file";
}

/** Copies the directory `src` to `dst`, which must not exist yet. */
export function copyTree(src: string, dst: string): CopyTreeResult {
  const result: CopyTreeResult = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const top = fs.lstatSync(src);
  if (!top.isDirectory()) throw new Error(`${src}: not a directory`);
  copyDir(src, dst, top, result);
  return result;
}

function copyDir(src: string, dst: string, st: fs.Stats, result: CopyTreeResult): void {
  // Owner-writable while it is filled: the directory's own mode (perhaps read-only) comes last.
  fs.mkdirSync(dst, { mode: 0o700 });
  result.dirs++;
  for (const name of fs.readdirSync(src).sort()) {
    const from = path.join(src, name);
    const to = path.join(dst, name);
    const s = fs.lstatSync(from);
    if (s.isDirectory()) {
      copyDir(from, to, s, result);
    } else if (s.isFile()) {
      // EXCL: the destination is a fresh tree; FICLONE shares the blocks where the filesystem can.
      fs.copyFileSync(from, to, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
      fs.chmodSync(to, s.mode & 0o7777);
      fs.utimesSync(to, s.atime, s.mtime);
      result.files++;
      result.bytes += s.size;
    } else if (s.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(from), to);
      fs.lutimesSync(to, s.atime, s.mtime);
      result.symlinks++;
    } else {
      throw new Error(`${from}: a ${kindOf(s)}; only directories, regular files and symlinks are copied`);
    }
  }
  fs.chmodSync(dst, st.mode & 0o7777);
  fs.utimesSync(dst, st.atime, st.mtime);
}

/**
 * Removes a tree like `rm -rf`, also where a directory in it lacks the owner's write or search
 * bit (a read-only directory kept as a modules tree had it): those are given u+rwx first, then
 * the removal is tried again. Missing is fine.
 */
export async function removeTree(dir: string): Promise<void> {
  try {
    await fs.promises.rm(dir, { recursive: true, force: true });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM") throw err;
  }
  const open = async (d: string): Promise<void> => {
    await fs.promises.chmod(d, 0o700).catch(() => {});
    for (const e of await fs.promises.readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await open(path.join(d, e.name));
    }
  };
  await open(dir);
  await fs.promises.rm(dir, { recursive: true, force: true });
}
