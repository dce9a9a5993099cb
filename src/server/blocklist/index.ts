// The blocklist database (paper §11), as the server, the HTTP endpoint and the CLI use it. The files behind
// it are the folder's own business.
export type {
  BlocklistChange,
  BlocklistEntry,
  BlocklistSource,
  BlocklistStoreErrorCode,
  BlocklistStoreOptions,
  BlocklistStoreStats,
  BlocklistWatchOptions,
  BlocklistWrite,
} from "./store.ts";
export { BlocklistStore, BlocklistStoreError, resolveBlocklistPath, updatesOf } from "./store.ts";
