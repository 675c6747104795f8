// The list `banger doctor` runs, in the order it prints them. Each entry is a Check from its
// group's file; a new check is one line here.
import { daemonCheck } from "./daemon.ts";
import { tapCheck, vsockCheck } from "./devices.ts";
import { cacheDirCheck, configDirCheck, runtimeDirCheck, stateDirCheck } from "./dirs.ts";
import { cacheSpaceCheck, stateSpaceCheck } from "./disk.ts";
import { kvmCheck } from "./kvm.ts";
import type { Check } from "./types.ts";
import { vmmCheck } from "./vmm.ts";

export const DOCTOR_CHECKS: readonly Check[] = [
  stateSpaceCheck,
  cacheSpaceCheck,
  stateDirCheck,
  cacheDirCheck,
  configDirCheck,
  runtimeDirCheck,
  kvmCheck,
  vmmCheck,
  vsockCheck,
  tapCheck,
  daemonCheck(),
];
