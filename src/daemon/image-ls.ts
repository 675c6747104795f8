// `banger image ls`: one directory of an image's rootfs.ext4, read with our own ext4 reader
// (no mount, no root), through its narrow handle (openExt4Image).
import { openExt4Image } from "../ext4/read/index.ts";
import { displayName, utf8ToName } from "../tree/names.ts";

export interface ImageDirEntry {
  /** UTF-8 display form of the name (invalid bytes become U+FFFD). */
  name: string;
  type: "file" | "dir" | "symlink" | "chardev" | "blockdev" | "fifo" | "socket" | "unknown";
  /** Full st_mode: type bits and permissions. */
  mode: number;
  /** `ls -l` style, e.g. "drwxr-xr-x". */
  modeString: string;
  uid: number;
  gid: number;
  size: number;
  /** ISO 8601 */
  mtime: string;
  /** Symlinks only. */
  target?: string;
}

const TYPE_CHAR: Record<ImageDirEntry["type"], string> = {
  file: "-",
  dir: "d",
  symlink: "l",
  chardev: "c",
  blockdev: "b",
  fifo: "p",
  socket: "s",
  unknown: "?",
};

export function modeString(mode: number, type: ImageDirEntry["type"]): string {
  const bit = (mask: number, c: string) => (mode & mask ? c : "-");
  // setuid/setgid/sticky replace the x of their triplet: lowercase when x is set, else uppercase.
  const special = (x: number, s: number, on: string, off: string) => (mode & s ? (mode & x ? on : off) : bit(x, "x"));
  return (
    TYPE_CHAR[type] +
    bit(0o400, "r") + bit(0o200, "w") + special(0o100, 0o4000, "s", "S") +
    bit(0o040, "r") + bit(0o020, "w") + special(0o010, 0o2000, "s", "S") +
    bit(0o004, "r") + bit(0o002, "w") + special(0o001, 0o1000, "t", "T")
  );
}

export class ImageLsError extends Error {
  override name = "ImageLsError";
}

/**
 * Entries of the directory at `dirPath` (UTF-8, "/"-separated, no symlinks followed), sorted
 * by name without "." and ".."; for a path that is not a directory, that one entry (as `ls` does).
 */
export function listExt4Dir(imageFile: string, dirPath: string): ImageDirEntry[] {
  const image = openExt4Image(imageFile);
  try {
    const entryOf = (ino: number, name: string): ImageDirEntry => {
      const st = image.stat(ino);
      const type = st.kind ?? "unknown";
      return {
        name: displayName(name),
        type,
        mode: st.mode,
        modeString: modeString(st.mode, type),
        uid: st.uid,
        gid: st.gid,
        size: st.size,
        mtime: new Date(st.mtime.sec * 1000 + Math.floor(st.mtime.nsec / 1e6)).toISOString(),
        ...(type === "symlink" ? { target: displayName(image.readlink(ino)) } : {}),
      };
    };
    let ino: number;
    try {
      ino = image.lookup(utf8ToName(dirPath));
    } catch {
      throw new ImageLsError(`no such file or directory: ${dirPath}`);
    }
    const self = entryOf(ino, dirPath.split("/").filter(Boolean).pop() ?? "/");
    if (self.type !== "dir") return [self];
    return image
      .readdir(ino)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((e) => entryOf(e.ino, e.name));
  } finally {
    image.close();
  }
}
