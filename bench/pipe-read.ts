// The pipe-read floor: reads standard input to its end and discards it, with the pipe grown to
// 1 MiB exactly as banger grows its own (src/io/pipe.ts), so the floor and banger read the same
// pipe the same way.
import { readSync } from "node:fs";
import { growPipeBuffer } from "../src/io/pipe.ts";

growPipeBuffer(0);
const buf = Buffer.allocUnsafe(4 << 20);
for (;;) {
  let n: number;
  try {
    n = readSync(0, buf, 0, buf.length, null);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EAGAIN") {
      Bun.sleepSync(1);
      continue;
    }
    throw e;
  }
  if (n === 0) break;
}
