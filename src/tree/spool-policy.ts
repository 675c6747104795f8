// "Hold or spool": who keeps the file bytes of a stream that can be read only once.
//
// Standard input, or a layer as it is downloaded, is written to a spool while it is parsed, so
// that file data can be read back by offset later. A FileDataSink that writes the same bytes
// into the image as they go by (the ext4 writer's streamed data) may *hold* them in place of
// the spool: while it holds every file byte seen so far, the spooler leaves the stream's chunks
// out, so a rootfs piped in is not written to disk twice. Two things can end that:
//   - the sink stops holding while the stream is still read (its prediction of the image ran
//     out of room): it calls release(), and the spooler keeps every chunk from the one being
//     parsed on. Bytes of earlier chunks that it had not placed yet it keeps itself;
//   - the sink's copies are discarded after the stream ended (the plan placed files elsewhere):
//     before anything reads the spool, it writes back every byte it held (restore()), so the
//     spool then has every file byte at its offset in the stream.
// The spooler makes one policy per spool and hands it to whoever makes the sink; a sink that
// cannot hold never calls hold(), and the spool keeps everything. Either way the agreement is
// this one object, not an assumption either side makes about the other.

export class SpoolPolicy {
  private holding = false;

  /** `writeBack` writes bytes into the spool at an offset in the stream (after its chunks were left out). */
  constructor(private readonly writeBack: (bytes: Uint8Array, streamOffset: number) => void) {}

  /** Sink, before the first chunk is parsed: it holds the file bytes in place of the spool. */
  hold(): void {
    this.holding = true;
  }

  /** Sink: it no longer holds every file byte; the spool keeps every chunk from the current one on. */
  release(): void {
    this.holding = false;
  }

  /**
   * Spooler, after handing a chunk to the parser (so that a release() within the chunk counts
   * for it): true when the chunk must be written to the spool.
   */
  get spoolsChunks(): boolean {
    return !this.holding;
  }

  /** Sink, after its copies were discarded: puts held bytes back at their offset in the stream. */
  restore(bytes: Uint8Array, streamOffset: number): void {
    this.writeBack(bytes, streamOffset);
  }
}
