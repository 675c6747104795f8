// src/ext4: the ext4 writer (plan, then write). The reader (tests, `image ls`) has its own
// entry point, read/index.ts, so that reading an image loads none of the writer.
export { Ext4ImageWriter, writeExt4Image, type ImageWriterOptions, type StreamedDataReport, type WriteImageOptions, type WriteStats } from "./write.ts";
export { planExt4, Ext4PlanError, type Ext4Options, type Ext4Plan } from "./plan.ts";
