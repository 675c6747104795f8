// `banger doctor`'s library: the checks, how to run and print them, and the real host probe.
export { DOCTOR_CHECKS } from "./checks.ts";
export { createHostProbe, type HostProbeOptions } from "./probe.ts";
export { exitCodeFor, formatReports, runChecks } from "./run.ts";
export type { Check, CheckReport, CheckResult, CheckStatus, DoctorContext, HostProbe } from "./types.ts";
