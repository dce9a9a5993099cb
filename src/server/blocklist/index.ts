// The blocklist database (paper §11), as the server, the HTTP endpoint and the CLI use it. The files behind
// it are the folder's own business.
export type { BlocklistEntry, BlocklistSource, BlocklistWrite } from "./entry.ts";
export type { BlocklistStoreErrorCode } from "./errors.ts";
export { BlocklistStoreError } from "./errors.ts";
export { ownAddresses } from "./own-addresses.ts";
export { blocklistPathProblem } from "./path-check.ts";
export type { BlocklistStoreOptions, BlocklistStoreStats } from "./store.ts";
export { BlocklistStore, resolveBlocklistPath } from "./store.ts";
export type { BlocklistChange, BlocklistWatchOptions } from "./watch.ts";
export { updatesOf } from "./watch.ts";
