// The NTP wire codec: constants, timestamps, kiss codes and refids, errors, packets. No I/O.
export * from "./constants.ts";
export * from "./errors.ts";
export * from "./kiss.ts";
export * from "./packet.ts";
export * from "./refid.ts";
export * from "./timestamp.ts";
