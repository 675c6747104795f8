import type { Command } from "../command.ts";
import { doctorCommand } from "./doctor.ts";
import { daemonCommands } from "./daemon.ts";
import { imageCommands } from "./image.ts";
import { imageCachePruneCommand } from "./image-cache.ts";
import { imageCatalogCommand } from "./image-catalog.ts";
import { imagePushCommand } from "./image-push.ts";
import { kernelCommands } from "./kernel.ts";
import { makeBundleCommand } from "./make-bundle.ts";
import { makeExt4Command } from "./make-ext4.ts";
import { makeKernelBundleCommand } from "./make-kernel-bundle.ts";
import { versionCommand } from "./version.ts";

/** Every command banger knows. Add new ones here. */
export const COMMANDS: Command[] = [...imageCommands, imagePushCommand, imageCatalogCommand, imageCachePruneCommand, ...daemonCommands, makeExt4Command, makeBundleCommand, ...kernelCommands, makeKernelBundleCommand, doctorCommand, versionCommand];
