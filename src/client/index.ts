// The client library (MISSION.md part 9): a client that behaves, for device and operating-system makers
// and for `ntpshield query` / `ntpshield sync`. docs/client.md shows how to embed it.
//
// NtpClient runs the whole client (timers, DNS, sockets, the state file) around the pure ClientCore;
// queryServer makes a single exchange; the pure pieces (PollSchedule, selectTruechimers, evaluateReply)
// are exported for simulators and tests. Modules holding internal helpers beside public names are
// re-exported by name, so that the package exports no more than it promises.
export { formatServer, type ResolvedAddress, unmapAddress } from "./address.ts";
export * from "./broadcast.ts";
export * from "./broadcast-listen.ts";
export * from "./client.ts";
export * from "./core.ts";
export { dnsResolver } from "./dns.ts";
export * from "./errors.ts";
export type { ClientAction, ClientEvent } from "./events.ts";
export * from "./manycast.ts";
export * from "./manycast-query.ts";
export * from "./match.ts";
export * from "./measure.ts";
export * from "./nts.ts";
export { CLIENT_DEFAULTS, type ClientOptions, type ServerSpec } from "./options.ts";
export * from "./poll.ts";
export { type QueryOptions, type QueryOutcome, type QueryResult, queryServer } from "./query.ts";
export * from "./random.ts";
export * from "./select.ts";
export {
  FILTER_LENGTH,
  type SourceRole,
  type SourceState,
  type SourceStatus,
  STOPPED_RECHECK_S,
} from "./source.ts";
export * from "./state-file.ts";
export * from "./udp.ts";
