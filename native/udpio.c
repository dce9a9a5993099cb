// udpio: batched UDP receive and send for the server's hot path, as a Node-API addon (Linux).
//
// Why: node:dgram hands every datagram to JavaScript as a new Buffer plus an rinfo object with the source
// address as a string, and every reply goes through a send request object. At the request rates of paper
// §2-§4 (a public server under a flood of misbehaving clients) that per-packet work, not the NTP logic,
// is what caps one core. Here a socket owns one ArrayBuffer, allocated once at open and shared with
// JavaScript: recv() fills up to N slots with one recvmmsg(2) and returns their count; JavaScript decides
// and writes each reply over its request, in place, and sets a reply length; send() answers them all with
// one sendmmsg(2). Nothing is allocated per packet or per batch, in C or in JavaScript: the calls take and
// return plain numbers.
//
// Per slot i (N slots, N = `batch`, default 64), the shared buffer holds:
//   data          Uint8Array   [i*2048, i*2048 + 2048)  the datagram, then the reply written over it
//   lengths       Int32Array   [i]   datagram length; -1 when it did not fit (MSG_TRUNC): malformed
//   keys          Uint32Array  [4i, 4i+4)  source address as src/defence/address-key.ts keys it: the 128
//                              bits in network order as four 32-bit words, IPv4 as ::ffff:a.b.c.d
//   ports         Int32Array   [i]   source port
//   stamps        Float64Array [i]   kernel receive time (SO_TIMESTAMPNS, CLOCK_REALTIME), Unix ms with
//                              the sub-ms fraction; the time of the batch when the kernel gave none
//   replyLengths  Int32Array   [i]   bytes of data[i] to send back; recv() sets 0, 0 = no reply
// and, once per socket, `counters` (Float64Array, names in the exported `counterNames`).
//
// Replies go to the source the datagram came from, kept here in C (with its IPv6 scope), not to whatever
// the key and port arrays hold by then: JavaScript cannot send anywhere but back to a requester. A socket
// bound to a wildcard address (0.0.0.0 or ::) also records each request's destination address
// (IP_PKTINFO / IPV6_RECVPKTINFO) and replies from it, so that a host with several addresses answers from
// the one the client asked, as a client that checks the reply's source requires.
//
// Errors that a third party can provoke (ICMP errors reported on the socket, a reply the kernel refuses
// for the requester's address, a full send buffer) are counted, never thrown: a flood must not be able to
// stop the server. Only misuse (bad arguments, a closed socket) and open() failures throw; open() errors
// look like Node's: `code` is the errno name (EADDRINUSE, EACCES, ...), with `errno`, `syscall`,
// `address` and `port`.
//
// Built by scripts/build-native.ts; loaded and typed by src/server/native-udp.ts (which falls back to
// node:dgram when it is absent). Only Node-API version 8 is used, so one binary serves every Node >= 16.

#define _GNU_SOURCE
#define NAPI_VERSION 8

#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/errqueue.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// Bumped whenever the exports or the shared layout change: the loader refuses a stale binary.
#define UDPIO_ABI 3

#define SLOT_BYTES 2048     // per-slot datagram space; larger datagrams are reported truncated
#define DEFAULT_BATCH 64    // slots per socket unless open() asks otherwise
#define MAX_BATCH 1024      // bounds the shared buffer (2 MiB of slots) and every per-batch loop
#define MAX_TIMEOUT_MS 60000
#define RECV_ROUNDS 16      // recvmmsg/poll attempts within one recv() call
#define ERRQUEUE_DRAIN 64   // error-queue entries read per drain
#define SEND_EINTR_RETRIES 8

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

// ---- counters, shared with JavaScript --------------------------------------------------------------------

enum {
  C_RECEIVED,        // datagrams received (truncated ones included)
  C_TRUNCATED,       // datagrams longer than a slot (MSG_TRUNC), reported as length -1
  C_NO_TIMESTAMP,    // datagrams without a kernel timestamp (stamped with the batch's clock_gettime)
  C_RECV_CALLS,      // recv() calls
  C_RECV_BATCHES,    // recv() calls that returned at least one datagram
  C_RECV_ERRORS,     // errors recvmmsg reported and that were absorbed (pending ICMP errors, ENOMEM, ...)
  C_ICMP_ERRORS,     // entries read from the socket's error queue (only with icmpErrors: true)
  C_SENT,            // replies the kernel accepted
  C_SEND_ERRORS,     // replies not sent: refused by the kernel, or a bad reply length
  C_SEND_BLOCKED,    // of those, replies dropped because the send buffer stayed full
  C_KERNEL_DROPS,    // the socket's cumulative drop count (SO_RXQ_OVFL, refreshed by stats() too)
  C_LAST_RECV_ERRNO, // errno of the last absorbed receive error, 0 if none
  C_LAST_SEND_ERRNO, // errno of the last send error, 0 if none
  C_COUNT
};

static const char *const counter_names[C_COUNT] = {
    "received",      "truncated",    "noTimestamp",   "recvCalls",      "recvBatches",
    "recvErrors",    "icmpErrors",   "sent",          "sendErrors",     "sendBlocked",
    "kernelDrops",   "lastRecvErrno", "lastSendErrno",
};

// ---- the socket ------------------------------------------------------------------------------------------

typedef union {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} sockaddr_any;

// Room for every control message a datagram can carry here: a timestamp, the drop count, the destination
// address, with their headers. Aligned as the cmsg macros require.
typedef union {
  char buf[CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(uint32_t)) +
           CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)) + 64];
  struct cmsghdr align;
} control_buf;

// Control buffer for one reply: its source address.
typedef union {
  char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
  struct cmsghdr align;
} reply_control;

// Where a request arrived: the local address to answer from (wildcard sockets only).
typedef union {
  struct in_pktinfo in4;
  struct in6_pktinfo in6;
} local_dst;

typedef struct {
  int fd;                 // -1 once closed
  int family;             // AF_INET or AF_INET6
  uint32_t batch;         // N
  bool pktinfo;           // bound to a wildcard address: answer from each request's destination
  bool icmp_errors;       // IP_RECVERR: read ICMP errors from the error queue and count them
  uint32_t received;      // slots filled by the last recv(): send() may answer only those

  napi_ref buffer_ref;    // strong reference to the shared ArrayBuffer
  size_t buffer_bytes;
  uint8_t *data;          // views into the shared buffer
  double *stamps;
  double *counters;
  uint32_t *keys;
  int32_t *lengths;
  int32_t *replies;
  int32_t *ports;

  // Private, allocated once at open(): receive and send message vectors.
  struct mmsghdr *rx;
  struct iovec *rx_iov;
  sockaddr_any *names;    // source of each slot; replies go there
  socklen_t *name_lens;   // 0 when the kernel gave no usable source
  control_buf *rx_ctrl;
  local_dst *dst;         // destination of each slot (when pktinfo)
  bool *has_dst;
  struct mmsghdr *tx;
  struct iovec *tx_iov;
  reply_control *tx_ctrl;
} udp_socket;

// Distinguishes our handles from any other object (napi_unwrap alone would trust any wrapped object).
static const napi_type_tag SOCKET_TAG = {0x6e747073686c6475ULL, 0x647069f0ab1e5eedULL};

// Shared-buffer layout: byte offsets of each array, all 8-byte aligned.
typedef struct {
  size_t data, stamps, counters, keys, lengths, replies, ports, total;
} layout;

static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

static layout layout_for(uint32_t n) {
  layout l;
  size_t at = 0;
  l.data = at;
  at = align8(at + (size_t)n * SLOT_BYTES);
  l.stamps = at;
  at = align8(at + (size_t)n * sizeof(double));
  l.counters = at;
  at = align8(at + (size_t)C_COUNT * sizeof(double));
  l.keys = at;
  at = align8(at + (size_t)n * 4u * sizeof(uint32_t));
  l.lengths = at;
  at = align8(at + (size_t)n * sizeof(int32_t));
  l.replies = at;
  at = align8(at + (size_t)n * sizeof(int32_t));
  l.ports = at;
  at = align8(at + (size_t)n * sizeof(int32_t));
  l.total = at;
  return l;
}

// ---- errors ----------------------------------------------------------------------------------------------

// The symbolic name of an errno value ("EADDRINUSE"), as Node reports it in `code`. A table of the values
// socket calls can give, rather than glibc's strerrorname_np, so that the binary needs no glibc >= 2.32.
static const char *errno_name(int err) {
  switch (err) {
  case EACCES: return "EACCES";
  case EADDRINUSE: return "EADDRINUSE";
  case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
  case EAFNOSUPPORT: return "EAFNOSUPPORT";
  case EAGAIN: return "EAGAIN";
  case EBADF: return "EBADF";
  case ECONNREFUSED: return "ECONNREFUSED";
  case EDESTADDRREQ: return "EDESTADDRREQ";
  case EFAULT: return "EFAULT";
  case EHOSTDOWN: return "EHOSTDOWN";
  case EHOSTUNREACH: return "EHOSTUNREACH";
  case EINTR: return "EINTR";
  case EINVAL: return "EINVAL";
  case EMFILE: return "EMFILE";
  case EMSGSIZE: return "EMSGSIZE";
  case ENETDOWN: return "ENETDOWN";
  case ENETUNREACH: return "ENETUNREACH";
  case ENFILE: return "ENFILE";
  case ENOBUFS: return "ENOBUFS";
  case ENODEV: return "ENODEV";
  case ENOMEM: return "ENOMEM";
  case ENOPROTOOPT: return "ENOPROTOOPT";
  case ENOTSOCK: return "ENOTSOCK";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  case EPERM: return "EPERM";
  case EPROTO: return "EPROTO";
  case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
  default: return "EUNKNOWN";
  }
}

// Throws an Error shaped like Node's system errors: message "<syscall> <CODE>[ <address>:<port>]",
// properties code, errno (negative, as libuv's), syscall, and address/port when given.
static void throw_errno(napi_env env, int err, const char *syscall, const char *address, int port) {
  char message[256];
  const char *code = errno_name(err);
  if (address != NULL) {
    snprintf(message, sizeof message, "%s %s %s:%d", syscall, code, address, port);
  } else {
    snprintf(message, sizeof message, "%s %s", syscall, code);
  }
  napi_value js_code, js_message, error, value;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &js_message) != napi_ok ||
      napi_create_error(env, js_code, js_message, &error) != napi_ok) {
    napi_throw_error(env, code, message);
    return;
  }
  if (napi_create_int32(env, -err, &value) == napi_ok) napi_set_named_property(env, error, "errno", value);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value) == napi_ok) {
    napi_set_named_property(env, error, "syscall", value);
  }
  if (address != NULL) {
    if (napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &value) == napi_ok) {
      napi_set_named_property(env, error, "address", value);
    }
    if (napi_create_int32(env, port, &value) == napi_ok) napi_set_named_property(env, error, "port", value);
  }
  napi_throw(env, error);
}

// Throws unless a JavaScript exception is already pending (a failed napi call may have raised one).
static void throw_type(napi_env env, const char *code, const char *message) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  napi_throw_type_error(env, code, message);
}

static void throw_range(napi_env env, const char *code, const char *message) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  napi_throw_range_error(env, code, message);
}

// Every napi call on the open/close paths is checked; on failure this throws (if nothing is pending yet).
#define NAPI_OK(env, call)                                                                                 \
  do {                                                                                                     \
    if ((call) != napi_ok) {                                                                               \
      throw_type((env), "ERR_NATIVE_UDP_NAPI", "udpio: Node-API call failed: " #call);                  \
      return NULL;                                                                                         \
    }                                                                                                      \
  } while (0)

// ---- lifetime --------------------------------------------------------------------------------------------

static void free_private(udp_socket *s) {
  free(s->rx);
  free(s->rx_iov);
  free(s->names);
  free(s->name_lens);
  free(s->rx_ctrl);
  free(s->dst);
  free(s->has_dst);
  free(s->tx);
  free(s->tx_iov);
  free(s->tx_ctrl);
  s->rx = NULL;
  s->rx_iov = NULL;
  s->names = NULL;
  s->name_lens = NULL;
  s->rx_ctrl = NULL;
  s->dst = NULL;
  s->has_dst = NULL;
  s->tx = NULL;
  s->tx_iov = NULL;
  s->tx_ctrl = NULL;
}

static void close_fd(udp_socket *s) {
  if (s->fd >= 0) {
    // Linux releases the descriptor even when close() reports EINTR: never retry it.
    (void)close(s->fd);
    s->fd = -1;
  }
}

// The handle was garbage-collected (or the environment is going away): release everything.
static void finalize_socket(napi_env env, void *data, void *hint) {
  (void)hint;
  udp_socket *s = data;
  if (s == NULL) return;
  close_fd(s);
  free_private(s);
  if (s->buffer_ref != NULL) {
    napi_delete_reference(env, s->buffer_ref);
    s->buffer_ref = NULL;
  }
  free(s);
}

// ---- argument helpers ------------------------------------------------------------------------------------

// Reads an optional numeric property; false (with an exception) when present but not a finite number in
// [min, max].
static bool opt_number(napi_env env, napi_value obj, const char *name, double min, double max, double *out) {
  bool has = false;
  napi_value v;
  napi_valuetype t;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok) return false;
  if (!has) return true;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) {
    return false;
  }
  if (t == napi_undefined) return true;
  double d;
  if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok || !(d >= min && d <= max)) {
    char message[160];
    snprintf(message, sizeof message, "udpio.open: options.%s must be a number in [%.0f, %.0f]", name, min,
             max);
    throw_range(env, "ERR_OUT_OF_RANGE", message);
    return false;
  }
  *out = d;
  return true;
}

static bool opt_bool(napi_env env, napi_value obj, const char *name, bool *out) {
  bool has = false;
  napi_value v;
  napi_valuetype t;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok) return false;
  if (!has) return true;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) {
    return false;
  }
  if (t == napi_undefined) return true;
  if (t != napi_boolean || napi_get_value_bool(env, v, out) != napi_ok) {
    char message[128];
    snprintf(message, sizeof message, "udpio.open: options.%s must be a boolean", name);
    throw_type(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  return true;
}

// The socket behind a handle argument; NULL with an exception when it is not one of ours or is closed.
static udp_socket *socket_arg(napi_env env, napi_value handle, bool allow_closed) {
  bool ours = false;
  napi_valuetype t;
  if (napi_typeof(env, handle, &t) != napi_ok || t != napi_object ||
      napi_check_object_type_tag(env, handle, &SOCKET_TAG, &ours) != napi_ok || !ours) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "udpio: the first argument must be a handle from udpio.open()");
    return NULL;
  }
  void *data = NULL;
  if (napi_unwrap(env, handle, &data) != napi_ok || data == NULL) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "udpio: the handle has no socket");
    return NULL;
  }
  udp_socket *s = data;
  if (s->fd < 0 && !allow_closed) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", "udpio: the socket is closed");
    return NULL;
  }
  return s;
}

// Refuses to touch the shared memory if JavaScript detached its ArrayBuffer (transfer(), postMessage with
// a transfer list): the pointers here would then point into memory this socket no longer owns.
static bool buffer_attached(napi_env env, udp_socket *s) {
  napi_value buffer;
  bool detached = true;
  if (s->buffer_ref == NULL || napi_get_reference_value(env, s->buffer_ref, &buffer) != napi_ok ||
      buffer == NULL || napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached) {
    napi_throw_error(env, "ERR_NATIVE_UDP_DETACHED", "udpio: the socket's shared ArrayBuffer was detached");
    return false;
  }
  return true;
}

// ---- open ------------------------------------------------------------------------------------------------

static bool set_int_option(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0;
}

static int get_int_option(int fd, int level, int name) {
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, level, name, &value, &len) != 0) return -1;
  return value;
}

// Sets a buffer size: the FORCE variant first (CAP_NET_ADMIN passes net.core.[rw]mem_max), then the plain
// one (capped by that limit). Returns 2 when forced, 1 when set plainly, 0 on failure (errno set).
static int set_buffer(int fd, int force_name, int name, int bytes) {
  if (set_int_option(fd, SOL_SOCKET, force_name, bytes)) return 2;
  if (set_int_option(fd, SOL_SOCKET, name, bytes)) return 1;
  return 0;
}

// Parses an address literal of `family` with an optional IPv6 "%zone" (interface name or index).
static bool parse_host(const char *host, int family, int port, sockaddr_any *out, socklen_t *out_len) {
  memset(out, 0, sizeof *out);
  if (family == AF_INET) {
    if (inet_pton(AF_INET, host, &out->in4.sin_addr) != 1) return false;
    out->in4.sin_family = AF_INET;
    out->in4.sin_port = htons((uint16_t)port);
    *out_len = sizeof out->in4;
    return true;
  }
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t n = strlen(host);
  if (n >= sizeof text) return false;
  memcpy(text, host, n + 1);
  char *zone = strchr(text, '%');
  uint32_t scope = 0;
  if (zone != NULL) {
    *zone++ = '\0';
    if (*zone == '\0') return false;
    char *end = NULL;
    unsigned long index = strtoul(zone, &end, 10);
    if (end != NULL && *end == '\0' && index <= UINT32_MAX) {
      scope = (uint32_t)index;
    } else {
      scope = if_nametoindex(zone);
      if (scope == 0) return false;
    }
  }
  if (inet_pton(AF_INET6, text, &out->in6.sin6_addr) != 1) return false;
  out->in6.sin6_family = AF_INET6;
  out->in6.sin6_port = htons((uint16_t)port);
  out->in6.sin6_scope_id = scope;
  *out_len = sizeof out->in6;
  return true;
}

static bool alloc_private(udp_socket *s) {
  size_t n = s->batch;
  s->rx = calloc(n, sizeof *s->rx);
  s->rx_iov = calloc(n, sizeof *s->rx_iov);
  s->names = calloc(n, sizeof *s->names);
  s->name_lens = calloc(n, sizeof *s->name_lens);
  s->rx_ctrl = calloc(n, sizeof *s->rx_ctrl);
  s->dst = calloc(n, sizeof *s->dst);
  s->has_dst = calloc(n, sizeof *s->has_dst);
  s->tx = calloc(n, sizeof *s->tx);
  s->tx_iov = calloc(n, sizeof *s->tx_iov);
  s->tx_ctrl = calloc(n, sizeof *s->tx_ctrl);
  return s->rx && s->rx_iov && s->names && s->name_lens && s->rx_ctrl && s->dst && s->has_dst && s->tx &&
         s->tx_iov && s->tx_ctrl;
}

// Points each receive slot at its data, source and control buffers. The kernel rewrites msg_namelen and
// msg_controllen of the messages it fills, so recv() restores those after each batch (reset_rx_slot).
static void reset_rx_slot(udp_socket *s, uint32_t i) {
  struct msghdr *h = &s->rx[i].msg_hdr;
  h->msg_name = &s->names[i];
  h->msg_namelen = sizeof s->names[i];
  h->msg_iov = &s->rx_iov[i];
  h->msg_iovlen = 1;
  h->msg_control = s->rx_ctrl[i].buf;
  h->msg_controllen = sizeof s->rx_ctrl[i].buf;
  h->msg_flags = 0;
  s->rx[i].msg_len = 0;
}

static bool set_property_int(napi_env env, napi_value obj, const char *name, int64_t value) {
  napi_value v;
  return napi_create_int64(env, value, &v) == napi_ok && napi_set_named_property(env, obj, name, v) == napi_ok;
}

static bool set_property_bool(napi_env env, napi_value obj, const char *name, bool value) {
  napi_value v;
  return napi_get_boolean(env, value, &v) == napi_ok && napi_set_named_property(env, obj, name, v) == napi_ok;
}

// Tags the handle as ours and hangs on it what JavaScript needs to build its views.
static bool describe_handle(napi_env env, napi_value handle, napi_value buffer, const udp_socket *s,
                            const layout *l, int bound_port, bool rcv_forced, bool snd_forced, bool timestamps,
                            bool drop_counts) {
  napi_value lay;
  if (napi_type_tag_object(env, handle, &SOCKET_TAG) != napi_ok ||
      napi_set_named_property(env, handle, "buffer", buffer) != napi_ok ||
      napi_create_object(env, &lay) != napi_ok ||
      napi_set_named_property(env, handle, "layout", lay) != napi_ok) {
    return false;
  }
  const struct {
    const char *name;
    size_t offset;
  } offsets[] = {
      {"data", l->data},       {"stamps", l->stamps},  {"counters", l->counters},   {"keys", l->keys},
      {"lengths", l->lengths}, {"ports", l->ports},    {"replyLengths", l->replies},
  };
  for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
    if (!set_property_int(env, lay, offsets[i].name, (int64_t)offsets[i].offset)) return false;
  }
  return set_property_int(env, handle, "batch", s->batch) &&
         set_property_int(env, handle, "slotBytes", SLOT_BYTES) &&
         set_property_int(env, handle, "port", bound_port) &&
         set_property_int(env, handle, "family", s->family == AF_INET ? 4 : 6) &&
         set_property_int(env, handle, "recvBufferBytes", get_int_option(s->fd, SOL_SOCKET, SO_RCVBUF)) &&
         set_property_int(env, handle, "sendBufferBytes", get_int_option(s->fd, SOL_SOCKET, SO_SNDBUF)) &&
         set_property_bool(env, handle, "recvBufferForced", rcv_forced) &&
         set_property_bool(env, handle, "sendBufferForced", snd_forced) &&
         set_property_bool(env, handle, "kernelTimestamps", timestamps) &&
         set_property_bool(env, handle, "kernelDropCounts", drop_counts) &&
         set_property_bool(env, handle, "replyFromDestination", s->pktinfo);
}

// open(host, port, family, options) -> handle: an object carrying the shared `buffer`, the byte offset of
// each array in it (`layout`), `batch`, `slotBytes`, the bound `port` (useful with port 0), the buffer
// sizes the kernel granted, and whether kernel timestamps and drop counts are on.
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    throw_type(env, "ERR_MISSING_ARGS", "udpio.open(host, port, family, options?)");
    return NULL;
  }
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t host_len = 0;
  napi_valuetype t;
  NAPI_OK(env, napi_typeof(env, argv[0], &t));
  if (t != napi_string) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "udpio.open: host must be a string");
    return NULL;
  }
  NAPI_OK(env, napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_len));
  if (host_len + 1 >= sizeof host) {
    throw_type(env, "ERR_INVALID_ARG_VALUE", "udpio.open: host is too long for an address literal");
    return NULL;
  }
  double port_d = -1, family_d = 0;
  NAPI_OK(env, napi_typeof(env, argv[1], &t));
  if (t == napi_number) NAPI_OK(env, napi_get_value_double(env, argv[1], &port_d));
  if (!(port_d >= 0 && port_d <= 65535 && port_d == (double)(int)port_d)) {
    throw_range(env, "ERR_SOCKET_BAD_PORT", "udpio.open: port must be an integer in [0, 65535]");
    return NULL;
  }
  NAPI_OK(env, napi_typeof(env, argv[2], &t));
  if (t == napi_number) NAPI_OK(env, napi_get_value_double(env, argv[2], &family_d));
  if (family_d != 4 && family_d != 6) {
    throw_type(env, "ERR_INVALID_ARG_VALUE", "udpio.open: family must be 4 or 6");
    return NULL;
  }
  int port = (int)port_d;
  int family = family_d == 4 ? AF_INET : AF_INET6;

  bool reuse_port = false, icmp_errors = false, dont_fragment = true;
  double rcvbuf = 0, sndbuf = 0, batch = DEFAULT_BATCH;
  if (argc >= 4) {
    NAPI_OK(env, napi_typeof(env, argv[3], &t));
    if (t == napi_object) {
      if (!opt_bool(env, argv[3], "reusePort", &reuse_port) ||
          !opt_bool(env, argv[3], "icmpErrors", &icmp_errors) ||
          !opt_bool(env, argv[3], "dontFragment", &dont_fragment) ||
          !opt_number(env, argv[3], "recvBufferBytes", 0, INT_MAX / 2, &rcvbuf) ||
          !opt_number(env, argv[3], "sendBufferBytes", 0, INT_MAX / 2, &sndbuf) ||
          !opt_number(env, argv[3], "batch", 1, MAX_BATCH, &batch)) {
        return NULL;
      }
    } else if (t != napi_undefined) {
      throw_type(env, "ERR_INVALID_ARG_TYPE", "udpio.open: options must be an object");
      return NULL;
    }
  }

  sockaddr_any addr;
  socklen_t addr_len = 0;
  if (!parse_host(host, family, port, &addr, &addr_len)) {
    char message[160];
    snprintf(message, sizeof message, "udpio.open: \"%s\" is not an IPv%d address literal", host,
             family == AF_INET ? 4 : 6);
    throw_type(env, "ERR_INVALID_IP_ADDRESS", message);
    return NULL;
  }
  bool wildcard = family == AF_INET ? addr.in4.sin_addr.s_addr == htonl(INADDR_ANY)
                                    : IN6_IS_ADDR_UNSPECIFIED(&addr.in6.sin6_addr);

  // The socket, its options, the bind: each failure closes the descriptor and throws a Node-like error.
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket", NULL, 0);
    return NULL;
  }
  const char *failed = NULL;
  int rcv_forced = 0, snd_forced = 0;
  if (family == AF_INET6 && !set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1)) failed = "setsockopt";
  if (!failed && reuse_port && !set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1)) failed = "setsockopt";
  if (!failed && rcvbuf > 0 && (rcv_forced = set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, (int)rcvbuf)) == 0) {
    failed = "setsockopt";
  }
  if (!failed && sndbuf > 0 && (snd_forced = set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, (int)sndbuf)) == 0) {
    failed = "setsockopt";
  }
  if (!failed && wildcard) {
    bool ok = family == AF_INET ? set_int_option(fd, IPPROTO_IP, IP_PKTINFO, 1)
                                : set_int_option(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    if (!ok) failed = "setsockopt";
  }
  if (!failed && icmp_errors) {
    bool ok = family == AF_INET ? set_int_option(fd, IPPROTO_IP, IP_RECVERR, 1)
                                : set_int_option(fd, IPPROTO_IPV6, IPV6_RECVERR, 1);
    if (!ok) failed = "setsockopt";
  }
  if (failed) {
    int err = errno;
    (void)close(fd);
    throw_errno(env, err, failed, host, port);
    return NULL;
  }
  // Best effort: without them the server still works, with clock_gettime stamps and no drop count.
  bool timestamps = set_int_option(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1);
  bool drop_counts = set_int_option(fd, SOL_SOCKET, SO_RXQ_OVFL, 1);
  // DF on replies without path-MTU bookkeeping: the kernel then skips the per-packet IP ID computation. A
  // reply longer than the outgoing interface's MTU then fails (EMSGSIZE, counted) instead of leaving in
  // fragments; NTP replies are far below any MTU.
  if (family == AF_INET && dont_fragment) {
    (void)set_int_option(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
  }
  if (bind(fd, &addr.sa, addr_len) != 0) {
    int err = errno;
    (void)close(fd);
    throw_errno(env, err, "bind", host, port);
    return NULL;
  }
  sockaddr_any bound;
  socklen_t bound_len = sizeof bound;
  if (getsockname(fd, &bound.sa, &bound_len) != 0) {
    int err = errno;
    (void)close(fd);
    throw_errno(env, err, "getsockname", host, port);
    return NULL;
  }
  int bound_port = ntohs(family == AF_INET ? bound.in4.sin_port : bound.in6.sin6_port);

  // The shared buffer and the private vectors.
  udp_socket *s = calloc(1, sizeof *s);
  if (s == NULL) {
    (void)close(fd);
    throw_errno(env, ENOMEM, "calloc", NULL, 0);
    return NULL;
  }
  s->fd = fd;
  s->family = family;
  s->batch = (uint32_t)batch;
  s->pktinfo = wildcard;
  s->icmp_errors = icmp_errors;
  if (!alloc_private(s)) {
    close_fd(s);
    free_private(s);
    free(s);
    throw_errno(env, ENOMEM, "calloc", NULL, 0);
    return NULL;
  }
  layout l = layout_for(s->batch);
  napi_value buffer;
  void *base = NULL;
  if (napi_create_arraybuffer(env, l.total, &base, &buffer) != napi_ok || base == NULL ||
      napi_create_reference(env, buffer, 1, &s->buffer_ref) != napi_ok) {
    close_fd(s);
    free_private(s);
    free(s);
    throw_type(env, "ERR_NATIVE_UDP_NAPI", "udpio.open: cannot create the shared ArrayBuffer");
    return NULL;
  }
  uint8_t *mem = base;
  memset(mem, 0, l.total);
  s->buffer_bytes = l.total;
  s->data = mem + l.data;
  s->stamps = (double *)(void *)(mem + l.stamps);
  s->counters = (double *)(void *)(mem + l.counters);
  s->keys = (uint32_t *)(void *)(mem + l.keys);
  s->lengths = (int32_t *)(void *)(mem + l.lengths);
  s->replies = (int32_t *)(void *)(mem + l.replies);
  s->ports = (int32_t *)(void *)(mem + l.ports);
  for (uint32_t i = 0; i < s->batch; i++) {
    s->rx_iov[i].iov_base = s->data + (size_t)i * SLOT_BYTES;
    s->rx_iov[i].iov_len = SLOT_BYTES;
    reset_rx_slot(s, i);
  }

  // The handle object: from here on its finalizer owns `s`.
  napi_value handle;
  if (napi_create_object(env, &handle) != napi_ok ||
      napi_wrap(env, handle, s, finalize_socket, NULL, NULL) != napi_ok) {
    finalize_socket(env, s, NULL);
    throw_type(env, "ERR_NATIVE_UDP_NAPI", "udpio.open: cannot create the handle");
    return NULL;
  }
  if (!describe_handle(env, handle, buffer, s, &l, bound_port, rcv_forced == 2, snd_forced == 2, timestamps,
                       drop_counts)) {
    close_fd(s); // the rest goes when the handle is collected
    throw_type(env, "ERR_NATIVE_UDP_NAPI", "udpio.open: cannot describe the handle");
    return NULL;
  }
  return handle;
}

// ---- recv ------------------------------------------------------------------------------------------------

static double realtime_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int64_t monotonic_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Reads (and counts) what the error queue holds: ICMP errors for earlier replies (IP_RECVERR). Bounded;
// what is left stays for the next drain. Entries there take receive-buffer space, so they must not pile up.
static void drain_error_queue(udp_socket *s) {
  for (int k = 0; k < ERRQUEUE_DRAIN; k++) {
    char data[64];
    union {
      char buf[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6)) + 64];
      struct cmsghdr align;
    } ctrl;
    sockaddr_any from;
    struct iovec iov = {data, sizeof data};
    struct msghdr h = {0};
    h.msg_name = &from;
    h.msg_namelen = sizeof from;
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = ctrl.buf;
    h.msg_controllen = sizeof ctrl.buf;
    ssize_t r = recvmsg(s->fd, &h, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      return; // EAGAIN: empty
    }
    s->counters[C_ICMP_ERRORS] += 1;
  }
}

// Whether a receive error is the socket's business (count and go on) rather than a misuse (throw).
static bool absorbable(int err) {
  return !(err == EBADF || err == ENOTSOCK || err == EFAULT || err == EINVAL);
}

// Fills the shared arrays for the n datagrams just received.
static void take_batch(udp_socket *s, uint32_t n) {
  double batch_ms = -1; // clock_gettime for the batch, read only if some datagram has no kernel stamp
  for (uint32_t i = 0; i < n; i++) {
    struct msghdr *h = &s->rx[i].msg_hdr;
    if (h->msg_flags & MSG_TRUNC) {
      s->lengths[i] = -1;
      s->counters[C_TRUNCATED] += 1;
    } else {
      s->lengths[i] = (int32_t)s->rx[i].msg_len;
    }
    s->replies[i] = 0;
    uint32_t *key = &s->keys[(size_t)i * 4u];
    const sockaddr_any *from = &s->names[i];
    if (h->msg_namelen >= sizeof(struct sockaddr_in) && from->sa.sa_family == AF_INET) {
      key[0] = 0;
      key[1] = 0;
      key[2] = 0xffff; // IPv4-mapped, as parseAddressKey keys "a.b.c.d"
      key[3] = ntohl(from->in4.sin_addr.s_addr);
      s->ports[i] = ntohs(from->in4.sin_port);
      s->name_lens[i] = sizeof(struct sockaddr_in);
    } else if (h->msg_namelen >= sizeof(struct sockaddr_in6) && from->sa.sa_family == AF_INET6) {
      uint32_t words[4];
      memcpy(words, &from->in6.sin6_addr, sizeof words);
      for (int w = 0; w < 4; w++) key[w] = ntohl(words[w]);
      s->ports[i] = ntohs(from->in6.sin6_port);
      s->name_lens[i] = sizeof(struct sockaddr_in6);
    } else {
      key[0] = key[1] = key[2] = key[3] = 0; // no usable source: never answered (see send)
      s->ports[i] = 0;
      s->name_lens[i] = 0;
    }
    bool stamped = false;
    s->has_dst[i] = false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
          c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
        struct timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        s->stamps[i] = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
        stamped = true;
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
                 c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
        uint32_t drops;
        memcpy(&drops, CMSG_DATA(c), sizeof drops);
        // The count as it was when this datagram was queued: it can be older than what SO_MEMINFO said.
        if ((double)drops > s->counters[C_KERNEL_DROPS]) s->counters[C_KERNEL_DROPS] = (double)drops;
      } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
                 c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
        memcpy(&s->dst[i].in4, CMSG_DATA(c), sizeof s->dst[i].in4);
        s->has_dst[i] = true;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                 c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
        memcpy(&s->dst[i].in6, CMSG_DATA(c), sizeof s->dst[i].in6);
        s->has_dst[i] = true;
      }
    }
    if (!stamped) {
      if (batch_ms < 0) batch_ms = realtime_ms();
      s->stamps[i] = batch_ms;
      s->counters[C_NO_TIMESTAMP] += 1;
    }
  }
  // Restore what the kernel rewrote, ready for the next batch.
  for (uint32_t i = 0; i < n; i++) reset_rx_slot(s, i);
  s->counters[C_RECEIVED] += n;
  s->counters[C_RECV_BATCHES] += 1;
}

// The socket a call on a batch names (argv[0]) and the call's other arguments into argv[0..want): throws
// and returns NULL when arguments are missing, the handle is not an open socket of ours, or its shared
// buffer was detached.
static udp_socket *batch_call(napi_env env, napi_callback_info info, size_t want, napi_value *argv,
                              const char *usage) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    throw_type(env, "ERR_MISSING_ARGS", usage);
    return NULL;
  }
  udp_socket *s = socket_arg(env, argv[0], false);
  if (s == NULL || !buffer_attached(env, s)) return NULL;
  return s;
}

// After a full batch (more may be waiting), the socket's drop count now (SO_MEMINFO). The count
// each datagram carries (SO_RXQ_OVFL) is the one at the time it was queued, so with a full queue it is as
// old as the queue is long (a tenth of a second and more in a flood); this one is current. One getsockopt
// per full batch, none when the worker keeps up.
static void read_drops_now(udp_socket *s) {
  uint32_t meminfo[SK_MEMINFO_VARS];
  socklen_t len = sizeof meminfo;
  memset(meminfo, 0, sizeof meminfo);
  if (getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len) != 0 ||
      len <= SK_MEMINFO_DROPS * sizeof(uint32_t))
    return;
  double drops = (double)meminfo[SK_MEMINFO_DROPS];
  if (drops > s->counters[C_KERNEL_DROPS]) s->counters[C_KERNEL_DROPS] = drops;
}

// recv(handle, timeoutMs) -> count of slots filled (0 when nothing came within timeoutMs; 0 = do not
// wait). Takes what is queued first; only when the queue is empty does it poll() for the rest of the time.
static napi_value js_recv(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  udp_socket *s = batch_call(env, info, 2, argv, "udpio.recv(handle, timeoutMs)");
  if (s == NULL) return NULL;
  double timeout = -1;
  if (napi_get_value_double(env, argv[1], &timeout) != napi_ok ||
      !(timeout >= 0 && timeout <= MAX_TIMEOUT_MS)) {
    throw_range(env, "ERR_OUT_OF_RANGE", "udpio.recv: timeoutMs must be a number in [0, 60000]");
    return NULL;
  }
  s->counters[C_RECV_CALLS] += 1;
  s->received = 0;
  int wait_ms = (int)timeout;
  int64_t deadline = wait_ms > 0 ? monotonic_ms() + wait_ms : 0;
  int n = 0;
  for (int round = 0; round < RECV_ROUNDS; round++) {
    n = recvmmsg(s->fd, s->rx, s->batch, MSG_DONTWAIT, NULL);
    if (n > 0) break;
    int err = n == 0 ? EAGAIN : errno;
    n = 0;
    if (err == EINTR) continue;
    if (err != EAGAIN && err != EWOULDBLOCK) {
      if (!absorbable(err)) {
        throw_errno(env, err, "recvmmsg", NULL, 0);
        return NULL;
      }
      // A pending socket error (with icmpErrors: an ICMP error for an earlier reply), or the kernel short
      // of memory: counted; the datagrams behind it are still there.
      s->counters[C_RECV_ERRORS] += 1;
      s->counters[C_LAST_RECV_ERRNO] = err;
      if (s->icmp_errors) drain_error_queue(s);
      continue;
    }
    // Nothing queued: wait for the rest of the time.
    if (wait_ms <= 0) break;
    int left = (int)(deadline - monotonic_ms());
    if (left <= 0) break;
    struct pollfd p = {s->fd, POLLIN, 0};
    int ready = poll(&p, 1, left);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw_errno(env, errno, "poll", NULL, 0);
      return NULL;
    }
    if (ready == 0) break;
    if (p.revents & POLLERR) {
      if (s->icmp_errors) drain_error_queue(s);
    }
    if (p.revents & POLLNVAL) {
      throw_errno(env, EBADF, "poll", NULL, 0);
      return NULL;
    }
  }
  if (n > 0) {
    take_batch(s, (uint32_t)n);
    s->received = (uint32_t)n;
    if ((uint32_t)n == s->batch) read_drops_now(s);
  }
  if (napi_create_int32(env, n, &result) != napi_ok) return NULL;
  return result;
}

// ---- send ------------------------------------------------------------------------------------------------

// Errors a pending ICMP error (IP_RECVERR) can surface on the next send: sk_err is cleared by the call
// that reports it, so the reply that drew it deserves one more try.
static bool pending_socket_error(int err) {
  return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN ||
         err == ENETDOWN || err == EPROTO;
}

// Sets the reply's source to the request's destination (wildcard sockets).
static void set_reply_source(udp_socket *s, uint32_t slot, struct msghdr *h, uint32_t k) {
  if (!s->pktinfo || !s->has_dst[slot]) {
    h->msg_control = NULL;
    h->msg_controllen = 0;
    return;
  }
  reply_control *rc = &s->tx_ctrl[k];
  memset(rc, 0, sizeof *rc);
  h->msg_control = rc->buf;
  struct cmsghdr *c;
  if (s->family == AF_INET) {
    h->msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
    c = CMSG_FIRSTHDR(h);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
    struct in_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    // ipi_spec_dst is the local address the request was routed to (for a broadcast request, the
    // interface's own address): the right source for the reply. Interface 0: routing picks it.
    pi.ipi_spec_dst = s->dst[slot].in4.ipi_spec_dst;
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
  } else {
    h->msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
    c = CMSG_FIRSTHDR(h);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
    struct in6_pktinfo pi = s->dst[slot].in6;
    // A multicast destination cannot be a source: keep the interface, let the kernel pick the address.
    if (IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr)) pi.ipi6_addr = in6addr_any;
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
  }
}

// send(handle, count) -> replies sent: for slots [0, count) of the last recv() whose reply length is > 0,
// sends data[slot][0, replyLength) back to the slot's source, in one sendmmsg where the kernel allows.
static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  udp_socket *s = batch_call(env, info, 2, argv, "udpio.send(handle, count)");
  if (s == NULL) return NULL;
  int32_t count = -1;
  if (napi_get_value_int32(env, argv[1], &count) != napi_ok || count < 0 || (uint32_t)count > s->received) {
    throw_range(env, "ERR_OUT_OF_RANGE",
                "udpio.send: count must be an integer in [0, slots filled by the last recv]");
    return NULL;
  }
  // Gather the replies.
  uint32_t k = 0;
  for (uint32_t i = 0; i < (uint32_t)count; i++) {
    int32_t len = s->replies[i];
    if (len <= 0) continue;
    if (len > SLOT_BYTES || s->name_lens[i] == 0) {
      s->counters[C_SEND_ERRORS] += 1;
      s->counters[C_LAST_SEND_ERRNO] = len > SLOT_BYTES ? EMSGSIZE : EDESTADDRREQ;
      continue;
    }
    s->tx_iov[k].iov_base = s->data + (size_t)i * SLOT_BYTES;
    s->tx_iov[k].iov_len = (size_t)len;
    struct msghdr *h = &s->tx[k].msg_hdr;
    h->msg_name = &s->names[i];
    h->msg_namelen = s->name_lens[i];
    h->msg_iov = &s->tx_iov[k];
    h->msg_iovlen = 1;
    h->msg_flags = 0;
    set_reply_source(s, i, h, k);
    s->tx[k].msg_len = 0;
    k++;
  }
  // Send them. Every pass either sends at least one message or settles the fate of one, except EINTR
  // (bounded by SEND_EINTR_RETRIES) and one wait for buffer space: at most k + bounded passes.
  uint32_t off = 0, sent = 0;
  int interrupts = 0;
  bool waited = false;
  uint32_t retried_at = UINT32_MAX; // message already retried after a pending socket error
  for (uint32_t pass = 0; off < k && pass < 2 * k + SEND_EINTR_RETRIES + 2; pass++) {
    int r = sendmmsg(s->fd, &s->tx[off], k - off, MSG_DONTWAIT);
    if (r > 0) {
      off += (uint32_t)r;
      sent += (uint32_t)r;
      continue;
    }
    int err = r == 0 ? EAGAIN : errno;
    if (err == EINTR && interrupts++ < SEND_EINTR_RETRIES) continue;
    if ((err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) && !waited) {
      // The send buffer is full: give the kernel a moment (1 ms at most) once per call, then drop.
      waited = true;
      struct pollfd p = {s->fd, POLLOUT, 0};
      (void)poll(&p, 1, 1);
      continue;
    }
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
      uint32_t dropped = k - off;
      s->counters[C_SEND_ERRORS] += dropped;
      s->counters[C_SEND_BLOCKED] += dropped;
      s->counters[C_LAST_SEND_ERRNO] = err;
      off = k;
      break;
    }
    if (err == EBADF || err == ENOTSOCK || err == EFAULT) {
      throw_errno(env, err, "sendmmsg", NULL, 0); // misuse, not the network
      return NULL;
    }
    if (pending_socket_error(err) && retried_at != off) {
      retried_at = off; // the error may belong to an earlier reply: try this one once more
      if (s->icmp_errors) drain_error_queue(s);
      continue;
    }
    // This reply is refused (an address the kernel will not send to, EINVAL for port 0, EACCES for a
    // broadcast address, ...): count it and go on with the next.
    s->counters[C_SEND_ERRORS] += 1;
    s->counters[C_LAST_SEND_ERRNO] = err;
    off++;
  }
  if (off < k) {
    // Pass bound reached (cannot happen unless the kernel keeps interrupting): count the rest as lost.
    s->counters[C_SEND_ERRORS] += k - off;
  }
  s->counters[C_SENT] += sent;
  s->received = 0; // a batch is answered once: a second send() of it throws rather than repeats
  if (napi_create_uint32(env, sent, &result) != napi_ok) return NULL;
  return result;
}

// reply(handle, slot, data, length) -> bool: sends data[0..length) at once to the source of slot `slot` of the
// batch the last recv() filled (before that batch's send()), from the address the request came to. For the
// rare request whose answer is not one datagram written in place (ntpq's mode 6: several fragments of their
// own sizes). One sendmsg, no retry; a refusal is counted (sendErrors) and returns false, never throws.
static napi_value js_reply(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  udp_socket *s = batch_call(env, info, 4, argv, "udpio.reply(handle, slot, data, length)");
  if (s == NULL) return NULL;
  int32_t slot = -1, length = -1;
  if (napi_get_value_int32(env, argv[1], &slot) != napi_ok || slot < 0 || (uint32_t)slot >= s->received) {
    throw_range(env, "ERR_OUT_OF_RANGE", "udpio.reply: slot must be one the last recv filled, before its send");
    return NULL;
  }
  bool is_typed = false;
  NAPI_OK(env, napi_is_typedarray(env, argv[2], &is_typed));
  napi_typedarray_type type;
  size_t n = 0;
  void *data = NULL;
  if (is_typed) NAPI_OK(env, napi_get_typedarray_info(env, argv[2], &type, &n, &data, NULL, NULL));
  if (!is_typed || type != napi_uint8_array) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "udpio.reply: data must be a Uint8Array");
    return NULL;
  }
  if (napi_get_value_int32(env, argv[3], &length) != napi_ok || length < 0 || (size_t)length > n ||
      length > SLOT_BYTES) {
    throw_range(env, "ERR_OUT_OF_RANGE", "udpio.reply: length must be within data and at most a slot");
    return NULL;
  }
  bool ok = false;
  if (s->name_lens[slot] == 0) {
    s->counters[C_SEND_ERRORS] += 1;
    s->counters[C_LAST_SEND_ERRNO] = EDESTADDRREQ;
  } else {
    struct iovec iov = {data, (size_t)length};
    struct msghdr h;
    memset(&h, 0, sizeof h);
    h.msg_name = &s->names[slot];
    h.msg_namelen = s->name_lens[slot];
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    set_reply_source(s, (uint32_t)slot, &h, 0); // send() rebuilds control buffer 0 for its own batch
    ssize_t r;
    int tries = 0;
    do {
      r = sendmsg(s->fd, &h, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR && tries++ < SEND_EINTR_RETRIES);
    if (r >= 0) {
      ok = true;
      s->counters[C_SENT] += 1;
    } else {
      s->counters[C_SEND_ERRORS] += 1;
      s->counters[C_LAST_SEND_ERRNO] = errno;
    }
  }
  if (napi_get_boolean(env, ok, &result) != napi_ok) return NULL;
  return result;
}

// ---- wait over several sockets ---------------------------------------------------------------------------

#define MAX_WAIT 30 // sockets per wait(): the result is a bit mask in a small integer

// wait(handles, timeoutMs) -> bit mask: waits at most timeoutMs (0..60000) until at least one of the sockets
// has datagrams queued, and returns a mask with bit i set for handles[i] readable (0 on timeout). For a
// thread that serves several sockets (one per listen address): wait on all, then recv(handle, 0) each
// readable one. ICMP errors queued on a socket with icmpErrors are read and counted here, so they never
// make it look readable. `handles` is the caller's array, built once: nothing is allocated per call.
static napi_value js_wait(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result, element;
  bool is_array = false;
  uint32_t count = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &count) != napi_ok || count < 1 || count > MAX_WAIT) {
    throw_type(env, "ERR_INVALID_ARG_TYPE",
               "udpio.wait(handles, timeoutMs): handles is an array of 1 to 30 handles");
    return NULL;
  }
  double timeout = -1;
  if (napi_get_value_double(env, argv[1], &timeout) != napi_ok ||
      !(timeout >= 0 && timeout <= MAX_TIMEOUT_MS)) {
    throw_range(env, "ERR_OUT_OF_RANGE", "udpio.wait: timeoutMs must be a number in [0, 60000]");
    return NULL;
  }
  udp_socket *sockets[MAX_WAIT];
  struct pollfd p[MAX_WAIT];
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, argv[0], i, &element) != napi_ok) {
      throw_type(env, "ERR_INVALID_ARG_TYPE", "udpio.wait: cannot read the handles");
      return NULL;
    }
    sockets[i] = socket_arg(env, element, false);
    if (sockets[i] == NULL || !buffer_attached(env, sockets[i])) return NULL;
    p[i].fd = sockets[i]->fd;
    p[i].events = POLLIN;
  }
  int wait_ms = (int)timeout;
  int64_t deadline = monotonic_ms() + wait_ms;
  int32_t mask = 0;
  for (int round = 0; round < RECV_ROUNDS && mask == 0; round++) {
    int left = (int)(deadline - monotonic_ms());
    for (uint32_t i = 0; i < count; i++) p[i].revents = 0;
    int ready = poll(p, count, left > 0 ? left : 0);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw_errno(env, errno, "poll", NULL, 0);
      return NULL;
    }
    for (uint32_t i = 0; i < count && ready > 0; i++) {
      if (p[i].revents & POLLNVAL) {
        throw_errno(env, EBADF, "poll", NULL, 0);
        return NULL;
      }
      if ((p[i].revents & POLLERR) && sockets[i]->icmp_errors) {
        drain_error_queue(sockets[i]); // not data: read, count, and keep waiting
        if (!(p[i].revents & POLLIN)) continue;
      }
      // POLLERR without icmpErrors is a pending socket error: recv() takes and counts it.
      if (p[i].revents & (POLLIN | POLLERR)) mask |= (int32_t)(1u << i);
    }
    if (ready == 0 || left <= 0) break;
  }
  if (napi_create_int32(env, mask, &result) != napi_ok) return NULL;
  return result;
}

// ---- close and stats -------------------------------------------------------------------------------------

// close(handle): closes the socket (idempotent). The shared buffer stays valid for JavaScript.
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    throw_type(env, "ERR_MISSING_ARGS", "udpio.close(handle)");
    return NULL;
  }
  udp_socket *s = socket_arg(env, argv[0], true);
  if (s == NULL) return NULL;
  close_fd(s);
  s->received = 0;
  free_private(s);
  return NULL;
}

// stats(handle) -> { kernelDrops, queuedBytes, recvBufferBytes }: reads the socket's drop count and
// receive-queue memory now (SO_MEMINFO, Linux 4.6+; -1 when unavailable) and stores the drop count in the
// kernelDrops counter too. Allocates: for reports, not for the hot path.
static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  udp_socket *s = batch_call(env, info, 1, argv, "udpio.stats(handle)");
  if (s == NULL) return NULL;
  uint32_t meminfo[SK_MEMINFO_VARS];
  socklen_t len = sizeof meminfo;
  memset(meminfo, 0, sizeof meminfo);
  int64_t drops = -1, queued = -1, rcvbuf = -1;
  if (getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len) == 0 &&
      len > SK_MEMINFO_DROPS * sizeof(uint32_t)) {
    drops = meminfo[SK_MEMINFO_DROPS];
    queued = meminfo[SK_MEMINFO_RMEM_ALLOC];
    rcvbuf = meminfo[SK_MEMINFO_RCVBUF];
    s->counters[C_KERNEL_DROPS] = (double)drops;
  }
  NAPI_OK(env, napi_create_object(env, &out));
  if (!set_property_int(env, out, "kernelDrops", drops) || !set_property_int(env, out, "queuedBytes", queued) ||
      !set_property_int(env, out, "recvBufferBytes", rcvbuf)) {
    throw_type(env, "ERR_NATIVE_UDP_NAPI", "udpio.stats: cannot build the result");
    return NULL;
  }
  return out;
}

// realtime(cell: Float64Array) -> undefined: writes the system clock (CLOCK_REALTIME, the clock the kernel's
// receive timestamps use) into cell[0] as Unix milliseconds with the fraction. The transmit timestamp is taken
// from the same clock as the receive timestamps, so a reply can never say it left before it arrived. The
// result goes into the caller's array, not a return value, so no number object is made per call.
static napi_value js_realtime(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_typed = false;
  if (argc >= 1) NAPI_OK(env, napi_is_typedarray(env, argv[0], &is_typed));
  if (!is_typed) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "udpio.realtime(cell): cell must be a Float64Array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  NAPI_OK(env, napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL));
  if (type != napi_float64_array || length < 1 || data == NULL) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "udpio.realtime(cell): cell must be a Float64Array of length >= 1");
    return NULL;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ((double *)data)[0] = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
  return NULL;
}

// ---- module ----------------------------------------------------------------------------------------------

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor methods[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recv", NULL, js_recv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"wait", NULL, js_wait, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"realtime", NULL, js_realtime, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reply", NULL, js_reply, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof methods / sizeof methods[0], methods) != napi_ok) return NULL;
  napi_value names, name;
  if (napi_create_array_with_length(env, C_COUNT, &names) != napi_ok) return NULL;
  for (uint32_t i = 0; i < C_COUNT; i++) {
    if (napi_create_string_utf8(env, counter_names[i], NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_set_element(env, names, i, name) != napi_ok) {
      return NULL;
    }
  }
  if (napi_set_named_property(env, exports, "counterNames", names) != napi_ok ||
      !set_property_int(env, exports, "abiVersion", UDPIO_ABI) ||
      !set_property_int(env, exports, "slotBytes", SLOT_BYTES) ||
      !set_property_int(env, exports, "defaultBatch", DEFAULT_BATCH) ||
      !set_property_int(env, exports, "maxBatch", MAX_BATCH) ||
      !set_property_int(env, exports, "maxTimeoutMs", MAX_TIMEOUT_MS) ||
      !set_property_int(env, exports, "maxWait", MAX_WAIT)) {
    return NULL;
  }
  return exports;
}
