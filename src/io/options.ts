// How banger does its I/O where there is a choice. Each field defaults to the fast way; turning
// one off is for tests (which check that every way writes the same image) and troubleshooting.
// Library code takes these as options and never reads the environment: the CLI resolves
// BANGER_NO_MMAP, BANGER_NO_DIRECT_IO, BANGER_NO_COPY_FILE_RANGE and BANGER_NO_TMPFILE into
// them once (src/cli/env.ts) and passes them down.
export interface IoOptions {
  /** false: read input files with read(), not through mapped windows (src/tar/mapped-read.ts). */
  mmap?: boolean;
  /** false: never O_DIRECT; staged writes go through the page cache (staged-writer.ts). */
  directIo?: boolean;
  /** false: never copy_file_range; copy by reading and writing instead (copy-range.ts). */
  copyFileRange?: boolean;
  /** false: never O_TMPFILE; build the output in a named temp file beside it (temp-output.ts). */
  tmpfile?: boolean;
}
