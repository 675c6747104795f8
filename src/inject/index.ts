export { BANGER_INIT_PATH, FIRST_BOOT_MARKER, NETWORK_CONF_PATH, type GuestAssets, type GuestFile, type GuestLink, type InitKind } from "./assets-types.ts";
export { guestLayer, MemoryByteSource, type GuestLayer, type GuestLayerOptions } from "./guest-layer.ts";
export { detectInit, kernelCommandLine, type InitChoice } from "./init.ts";
export { GUEST_ASSETS } from "./assets.ts";
