import type { Command } from "../command.ts";
import { daemonCommands } from "./daemon.ts";
import { imageCommands } from "./image.ts";
import { imageCachePruneCommand } from "./image-cache.ts";
import { makeExt4Command } from "./make-ext4.ts";

/** Every command banger knows. Add new ones here. */
export const COMMANDS: Command[] = [...imageCommands, imageCachePruneCommand, ...daemonCommands, makeExt4Command];
