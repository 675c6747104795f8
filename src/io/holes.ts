// Where a file holds data and where it has holes (lseek SEEK_DATA / SEEK_HOLE through bun:ffi):
// an ext4 image is mostly holes, and a bundle stores only its data.
import { dlopen, FFIType } from "bun:ffi";

const SEEK_DATA = 3;
const SEEK_HOLE = 4;

function openLibc() {
  if (process.platform !== "linux") return null;
  try {
    return dlopen("libc.so.6", { lseek: { args: [FFIType.i32, FFIType.i64, FFIType.i32], returns: FFIType.i64 } });
  } catch {
    return null;
  }
}

let libc: ReturnType<typeof openLibc> | undefined;

/**
 * The [start, end) ranges of an open file that hold data, in order; everything else reads as
 * zeros. Where SEEK_DATA is unsupported the whole file is one range (correct, just not sparse).
 */
export function dataRanges(fd: number, size: number): [number, number][] {
  libc ??= openLibc();
  if (!libc) return size > 0 ? [[0, size]] : [];
  const lseek = libc.symbols.lseek;
  const out: [number, number][] = [];
  for (let off = 0; off < size; ) {
    const d = Number(lseek(fd, off, SEEK_DATA));
    if (d < 0) {
      // ENXIO: no data past `off`. EINVAL on the first call: the file system can't tell.
      if (out.length === 0 && off === 0 && Number(lseek(fd, 0, SEEK_HOLE)) < 0) return size > 0 ? [[0, size]] : [];
      break;
    }
    if (d >= size) break;
    const h = Number(lseek(fd, d, SEEK_HOLE));
    const end = h < 0 ? size : Math.min(h, size);
    out.push([d, end]);
    off = end;
  }
  return out;
}
