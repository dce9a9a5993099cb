// ntpload: open-loop NTPv4 request generator for loopback throughput benchmarks (driven by bench/run.ts).
//
// Sends 48-byte NTPv4 client requests (mode 3, RFC 5905 §7.3) at a fixed offered rate for a fixed time,
// each from a different source address in 127.1.0.0-127.254.255.255 (every 127/8 address is local on
// Linux, and IP_PKTINFO's ipi_spec_dst picks the source per message), so that no per-client rate limit of
// the server under test sees the same client twice within a run. With --sources N the sources are the N
// addresses from --first-source on, taken in turn: each repeats every N / rate seconds, a population of
// clients polling at a fixed interval (bench/overload.ts: a flood from 500,000 repeating sources beside a
// population of mice in a disjoint range). Replies come back to the one socket;
// each is counted once if it is a mode-4 reply whose origin timestamp echoes one of our transmit
// timestamps (RFC 5905 §8: the server copies the request's transmit timestamp into the reply's origin),
// which carry a per-run key XOR a sequence number. One thread sends in small sendmmsg batches on a fixed
// schedule (open loop) and reads replies with recvmmsg in between. Prints one JSON line.
//
// --reflect PORT turns it into a minimal NTP responder (batched recvmmsg/sendmmsg, no clock reading, no
// state): the fastest any server could answer on this harness, used to find the generator's own ceiling.
//
// Only loopback targets: anything outside 127.0.0.0/8 and ::1 is refused. Time and packet count are
// bounded by the arguments and by hard caps below.
//
// --warmup S sends for S seconds before the measured window, whose replies are not counted; --delay S
// waits S seconds, sending nothing, before the warm-up: two generators started together then line up
// (overload.ts starts the mice with a warm-up and the flood with the same delay, so the mice's measured
// window is the flood).
//
// usage: ntpload --target ADDR:PORT --rate PPS --duration S [--warmup S] [--delay S] [--first-source N]
//                [--sources N] [--batch N] [--max-lag-us US] [--sleep-us US] [--linger-ms MS]
//        ntpload --reflect PORT --duration S

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NTP_LEN 48
#define MAX_RATE 10000000.0      // packets per second
#define MAX_SECONDS 600.0        // delay + warm-up + measured window
#define MAX_PACKETS 200000000ULL // bounds the duplicate bitmap (25 MB) and the run
#define MAX_BATCH 256
#define RX_BATCH 64
// Sources: 127.1.0.0 .. 127.254.255.255. 127.0/16 is left to servers; 127.255.255.255 is broadcast.
#define SRC_BASE 0x7f010000u
#define SRC_SPAN (254u * 65536u)

static double mono(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_s(double s) {
  if (s <= 0) return;
  struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

static void die(const char *msg) {
  fprintf(stderr, "ntpload: %s\n", msg);
  exit(2);
}

// ---- target ---------------------------------------------------------------------------------------------

union addr {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
};

// Parses "A.B.C.D:PORT" or "[::1]:PORT"; refuses anything that is not loopback.
static socklen_t parse_target(const char *s, union addr *a) {
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s) die("--target must be ADDR:PORT");
  size_t hl = (size_t)(colon - s);
  if (hl >= sizeof host) die("--target: address too long");
  memcpy(host, s, hl);
  host[hl] = 0;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 1 || port > 65535) die("--target: bad port");
  memset(a, 0, sizeof *a);
  if (host[0] == '[') {
    size_t n = strlen(host);
    if (n < 3 || host[n - 1] != ']') die("--target: bad IPv6 address");
    host[n - 1] = 0;
    if (inet_pton(AF_INET6, host + 1, &a->in6.sin6_addr) != 1) die("--target: bad IPv6 address");
    if (!IN6_IS_ADDR_LOOPBACK(&a->in6.sin6_addr)) die("--target: refusing a non-loopback address (only 127.0.0.0/8 and ::1)");
    a->in6.sin6_family = AF_INET6;
    a->in6.sin6_port = htons((uint16_t)port);
    return sizeof a->in6;
  }
  if (inet_pton(AF_INET, host, &a->in4.sin_addr) != 1) die("--target: bad IPv4 address");
  if ((ntohl(a->in4.sin_addr.s_addr) >> 24) != 127) die("--target: refusing a non-loopback address (only 127.0.0.0/8 and ::1)");
  a->in4.sin_family = AF_INET;
  a->in4.sin_port = htons((uint16_t)port);
  return sizeof a->in4;
}

static void big_buffers(int fd, int *rcvbuf) {
  int big = 64 << 20;
  // The FORCE variants (root) pass net.core.rmem_max; otherwise take what the limit allows.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) != 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  socklen_t l = sizeof *rcvbuf;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf, &l);
}

// ---- reflector ------------------------------------------------------------------------------------------

static int reflect(int port, double seconds) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket failed");
  int rcvbuf = 0;
  big_buffers(fd, &rcvbuf);
  struct timeval rto = {0, 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof rto);
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  me.sin_addr.s_addr = htonl(0x7f000001u);
  if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
    perror("ntpload: bind");
    return 1;
  }
  static unsigned char buf[RX_BATCH][NTP_LEN];
  struct mmsghdr m[RX_BATCH];
  struct iovec io[RX_BATCH];
  struct sockaddr_in from[RX_BATCH];
  printf("{\"reflector\":\"listening\",\"port\":%d}\n", port);
  fflush(stdout);
  uint64_t answered = 0;
  double end = mono() + seconds;
  while (mono() < end) {
    for (int i = 0; i < RX_BATCH; i++) {
      io[i] = (struct iovec){buf[i], NTP_LEN};
      memset(&m[i], 0, sizeof m[i]);
      m[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &io[i], .msg_iovlen = 1};
    }
    int n = recvmmsg(fd, m, RX_BATCH, MSG_WAITFORONE, NULL);
    if (n <= 0) continue;
    int k = 0;
    for (int i = 0; i < n; i++) {
      if (m[i].msg_len < NTP_LEN || (buf[i][0] & 7) != 3) continue;
      unsigned char *p = buf[i];
      p[0] = (unsigned char)((p[0] & 0x38) | 4); // same version, mode 4
      p[1] = 1;                                  // stratum 1: not a kiss-o'-death
      memcpy(p + 24, p + 40, 8);                 // origin <- client's transmit (RFC 5905 §8)
      if (k != i) {
        memcpy(buf[k], p, NTP_LEN);
        from[k] = from[i];
      }
      io[k] = (struct iovec){buf[k], NTP_LEN};
      m[k].msg_hdr = (struct msghdr){.msg_name = &from[k], .msg_namelen = sizeof from[k], .msg_iov = &io[k], .msg_iovlen = 1};
      k++;
    }
    if (k > 0) {
      int r = sendmmsg(fd, m, (unsigned)k, 0);
      if (r > 0) answered += (uint64_t)r;
    }
  }
  printf("{\"reflector\":\"done\",\"answered\":%llu}\n", (unsigned long long)answered);
  return 0;
}

// ---- generator ------------------------------------------------------------------------------------------

// One thread sends and receives: on a single core a separate receiver thread costs a context switch per
// wake-up (measured: about a tenth of the core), while draining the socket between send batches costs
// nothing extra. Replies wait in a large receive buffer meanwhile; its overflow count is reported.
static int fd;
static uint64_t key;
static uint8_t *seen;          // one bit per sequence number: each reply is counted once
static uint64_t issued;        // sequence numbers handed out so far
static uint64_t measure_from;  // first sequence number of the measured window

static struct {
  uint64_t received, valid, kod, warmup_valid, warmup_kod, invalid, duplicate;
} rx_count;

static unsigned char rx_buf[RX_BATCH][512];
static struct mmsghdr rx_m[RX_BATCH];
static struct iovec rx_io[RX_BATCH];

// Reads what is queued, without blocking; returns the number of datagrams read.
static int drain(void) {
  int total = 0;
  for (int round = 0; round < 16; round++) {
    for (int i = 0; i < RX_BATCH; i++) rx_m[i].msg_len = 0;
    int n = recvmmsg(fd, rx_m, RX_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    total += n;
    for (int i = 0; i < n; i++) {
      const unsigned char *p = rx_buf[i];
      rx_count.received++;
      if (rx_m[i].msg_len < NTP_LEN || (p[0] & 7) != 4) {
        rx_count.invalid++;
        continue;
      }
      uint64_t origin;
      memcpy(&origin, p + 24, 8);
      uint64_t seq = origin ^ key;
      if (seq >= issued) {
        rx_count.invalid++;
        continue;
      }
      uint8_t bit = (uint8_t)(1u << (seq & 7));
      if (seen[seq >> 3] & bit) {
        rx_count.duplicate++;
        continue;
      }
      seen[seq >> 3] |= bit;
      int kod = p[1] == 0; // stratum 0 in a reply is a kiss-o'-death (RFC 5905 §7.4)
      if (seq >= measure_from) {
        if (kod) rx_count.kod++;
        else rx_count.valid++;
      } else {
        if (kod) rx_count.warmup_kod++;
        else rx_count.warmup_valid++;
      }
    }
    if (n < RX_BATCH) break;
  }
  return total;
}

// The kernel's count of datagrams dropped at the sockets bound to a local UDP port, mostly because their
// receive buffer was full (the "drops" column of /proc/net/udp and udp6); -1 if unreadable.
static long long port_drops(unsigned port) {
  long long drops = -1;
  const char *files[] = {"/proc/net/udp", "/proc/net/udp6"};
  for (int i = 0; i < 2; i++) {
    FILE *f = fopen(files[i], "r");
    if (!f) continue;
    char line[512];
    while (fgets(line, sizeof line, f)) {
      char *colon = strchr(line, ':'); // after the slot number
      if (!colon) continue;
      char *local = colon + 1;
      while (*local == ' ') local++;
      char *pc = strchr(local, ':');
      if (!pc || strtoul(pc + 1, NULL, 16) != port) continue;
      size_t n = strlen(line);
      while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\n')) line[--n] = 0; // lines end in padding
      char *last = strrchr(line, ' ');
      if (last) drops = (drops < 0 ? 0 : drops) + strtoll(last + 1, NULL, 10);
    }
    fclose(f);
  }
  return drops;
}

static unsigned local_port(void) {
  union addr me;
  socklen_t l = sizeof me;
  if (getsockname(fd, &me.sa, &l) != 0) return 0;
  return ntohs(me.sa.sa_family == AF_INET6 ? me.in6.sin6_port : me.in4.sin_port);
}

static double num_arg(const char *name, const char *v, double lo, double hi) {
  char *end;
  double x = strtod(v, &end);
  if (*end || !(x >= lo && x <= hi)) {
    fprintf(stderr, "ntpload: %s must be a number in [%g, %g], got \"%s\"\n", name, lo, hi, v);
    exit(2);
  }
  return x;
}

int main(int argc, char **argv) {
  const char *target = NULL;
  double rate = 0, duration = 0, warmup = 0, delay = 0, sleep_us = 0, linger_ms = 300, max_lag_us = 500;
  uint64_t first_source = 0, sources = SRC_SPAN;
  int batch = 32, reflect_port = 0;
  static const struct option opts[] = {
      {"target", required_argument, 0, 't'},  {"rate", required_argument, 0, 'r'},
      {"duration", required_argument, 0, 'd'}, {"warmup", required_argument, 0, 'w'},
      {"first-source", required_argument, 0, 'f'}, {"sources", required_argument, 0, 's'},
      {"batch", required_argument, 0, 'b'},   {"sleep-us", required_argument, 0, 'k'},
      {"linger-ms", required_argument, 0, 'l'}, {"reflect", required_argument, 0, 'R'},
      {"max-lag-us", required_argument, 0, 'm'}, {"delay", required_argument, 0, 'D'},
      {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 't': target = optarg; break;
    case 'r': rate = num_arg("--rate", optarg, 1, MAX_RATE); break;
    case 'd': duration = num_arg("--duration", optarg, 0.1, MAX_SECONDS); break;
    case 'w': warmup = num_arg("--warmup", optarg, 0, MAX_SECONDS); break;
    case 'D': delay = num_arg("--delay", optarg, 0, MAX_SECONDS); break;
    case 'f': first_source = (uint64_t)num_arg("--first-source", optarg, 0, 4e9); break;
    case 's': sources = (uint64_t)num_arg("--sources", optarg, 1, SRC_SPAN); break;
    case 'b': batch = (int)num_arg("--batch", optarg, 1, MAX_BATCH); break;
    case 'k': sleep_us = num_arg("--sleep-us", optarg, 0, 100000); break;
    case 'l': linger_ms = num_arg("--linger-ms", optarg, 0, 5000); break;
    case 'm': max_lag_us = num_arg("--max-lag-us", optarg, 0, 1e7); break;
    case 'R': reflect_port = (int)num_arg("--reflect", optarg, 1, 65535); break;
    default:
      fprintf(stderr, "usage: ntpload --target ADDR:PORT --rate PPS --duration S [--warmup S] [--delay S] [--first-source N]\n"
                      "               [--sources N] [--batch N] [--max-lag-us US] [--sleep-us US] [--linger-ms MS]\n"
                      "       ntpload --reflect PORT --duration S\n");
      return 2;
    }
  }
  // Timer slack defaults to 50 us, which would coarsen the pacing sleeps.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  if (reflect_port) {
    if (duration <= 0) die("--reflect needs --duration");
    return reflect(reflect_port, duration);
  }
  if (!target || rate <= 0 || duration <= 0) die("--target, --rate and --duration are required");
  if (delay + warmup + duration > MAX_SECONDS) die("--delay + --warmup + --duration too long");
  union addr dst;
  socklen_t dstlen = parse_target(target, &dst);
  int v6 = dst.sa.sa_family == AF_INET6;
  if (v6) sources = 1; // ::1 is the only IPv6 loopback address
  uint64_t cap = (uint64_t)(rate * (warmup + duration)) + 1 + 2 * (uint64_t)batch;
  if (cap > MAX_PACKETS) die("--rate x (--warmup + --duration) exceeds the packet cap (200M)");

  fd = socket(dst.sa.sa_family, SOCK_DGRAM, 0);
  if (fd < 0) die("socket failed");
  int rcvbuf = 0;
  big_buffers(fd, &rcvbuf);
  // DF set: the kernel then skips the per-packet IP ID hash (several % of the sender's time).
  int pmtu = v6 ? IPV6_PMTUDISC_DO : IP_PMTUDISC_DO;
  if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof pmtu);
  else setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
  // Bound to the wildcard address on an ephemeral port: replies to every 127/8 source land here.
  union addr me;
  memset(&me, 0, sizeof me);
  me.sa.sa_family = dst.sa.sa_family;
  if (bind(fd, &me.sa, v6 ? sizeof me.in6 : sizeof me.in4) != 0) {
    perror("ntpload: bind");
    return 1;
  }
  if (getrandom(&key, sizeof key, 0) != sizeof key) key = (uint64_t)mono() * 0x9e3779b97f4a7c15ULL;
  seen = calloc((size_t)(cap / 8 + 1), 1);
  if (!seen) die("out of memory");

  struct mmsghdr m[MAX_BATCH];
  struct iovec io[MAX_BATCH];
  static unsigned char pkt[MAX_BATCH][NTP_LEN];
  static union {
    char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
    size_t align; // cmsg data is aligned to size_t
  } cm[MAX_BATCH];
  struct in_pktinfo *pktinfo[MAX_BATCH];
  for (int i = 0; i < batch; i++) {
    memset(pkt[i], 0, NTP_LEN);
    pkt[i][0] = (0 << 6) | (4 << 3) | 3; // LI 0, version 4, mode 3 (client)
    pkt[i][2] = 6;                       // poll 2^6 s, as a typical client
    pkt[i][3] = (unsigned char)-20;      // precision about 1 us
    io[i] = (struct iovec){pkt[i], NTP_LEN};
    memset(&m[i], 0, sizeof m[i]);
    m[i].msg_hdr.msg_name = &dst;
    m[i].msg_hdr.msg_namelen = dstlen;
    m[i].msg_hdr.msg_iov = &io[i];
    m[i].msg_hdr.msg_iovlen = 1;
    if (!v6) {
      m[i].msg_hdr.msg_control = cm[i].buf;
      m[i].msg_hdr.msg_controllen = sizeof cm[i].buf;
      struct cmsghdr *h = CMSG_FIRSTHDR(&m[i].msg_hdr);
      h->cmsg_level = IPPROTO_IP;
      h->cmsg_type = IP_PKTINFO;
      h->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
      pktinfo[i] = (struct in_pktinfo *)CMSG_DATA(h);
      memset(pktinfo[i], 0, sizeof *pktinfo[i]);
    }
  }

  for (int i = 0; i < RX_BATCH; i++) {
    rx_io[i] = (struct iovec){rx_buf[i], sizeof rx_buf[i]};
    rx_m[i].msg_hdr.msg_iov = &rx_io[i];
    rx_m[i].msg_hdr.msg_iovlen = 1;
  }

  // The sources in use are first_source .. first_source + sources - 1, in turn (addresses wrap at SRC_SPAN).
  uint64_t sent = 0, send_errors = 0, src = first_source, sent_at_measure = 0, sent_base = 0;
  // Packets the schedule gave up on because the sender fell behind by more than max_lag (see below).
  uint64_t skipped = 0, max_behind = 0;
  uint64_t lag_cap = (uint64_t)(rate * max_lag_us * 1e-6);
  if (lag_cap < (uint64_t)batch) lag_cap = (uint64_t)batch;
  int first_errno = 0, measuring = warmup <= 0;
  unsigned target_port = ntohs(v6 ? dst.in6.sin6_port : dst.in4.sin_port);
  sleep_s(delay); // nothing is sent meanwhile; replies cannot arrive before our first request
  long long target_drops_start = measuring ? port_drops(target_port) : -1;
  double t0 = mono(), t_measure = t0 + warmup, t_end = t_measure + duration, tick = sleep_us * 1e-6;
  measure_from = measuring ? 0 : UINT64_MAX;
  for (;;) {
    double t = mono();
    if (t >= t_end) break;
    if (!measuring && t >= t_measure) {
      measuring = 1;
      t_measure = t;
      t_end = t + duration;
      sent_at_measure = sent;
      measure_from = issued;
      target_drops_start = port_drops(target_port);
      // Restart the schedule: the measured window offers exactly rate x duration, whatever the
      // warm-up (and the first touches of the bitmap) left behind.
      t0 = t;
      sent_base = sent;
      skipped = 0;
      max_behind = 0;
    }
    // Open loop: the schedule is fixed by the clock, whatever the server does; a sender that falls
    // behind catches up in full batches and the achieved rate says so.
    uint64_t due = sent_base + (uint64_t)((t - t0) * rate) - skipped;
    if (due > sent && due - sent > max_behind) max_behind = due - sent;
    // A sender that was held up (descheduled, or at its own limit) does not catch up in one burst: a
    // burst of thousands of back-to-back requests would overflow a server's socket buffer and measure
    // the generator's hiccup. What it owes beyond max_lag is dropped from the schedule and shows as a
    // send rate below the offered one.
    if (due > sent + lag_cap) {
      skipped += due - sent - lag_cap;
      due = sent + lag_cap;
    }
    if (sent >= due) {
      // By default the generator spins (reading replies) rather than sleeps: it owns its core, and
      // on a virtual machine a sleeping core's wake-up can take milliseconds, which would turn a steady
      // rate into bursts. --sleep-us > 0 sleeps instead, for a shared core.
      if (drain() > 0 || tick <= 0) continue;
      double next = t0 + (double)(sent - sent_base + skipped + 1) / rate;
      sleep_s(next - t > tick ? next - t : tick);
      continue;
    }
    uint64_t base = issued;
    int k = due - sent > (uint64_t)batch ? batch : (int)(due - sent);
    if (base + (uint64_t)k > cap) break;
    for (int i = 0; i < k; i++) {
      uint64_t tx = key ^ (base + (uint64_t)i);
      memcpy(pkt[i] + 40, &tx, 8); // transmit timestamp = key XOR sequence number
      if (!v6) pktinfo[i]->ipi_spec_dst.s_addr = htonl(SRC_BASE + (uint32_t)(src % SRC_SPAN));
      src = src + 1 >= first_source + sources ? first_source : src + 1;
    }
    issued = base + (uint64_t)k;
    int r = sendmmsg(fd, m, (unsigned)k, 0);
    if (r < 0) {
      if (!first_errno) first_errno = errno;
      send_errors++;
      if (errno == EAGAIN || errno == ENOBUFS) sleep_s(50e-6);
      continue;
    }
    sent += (uint64_t)r;
    if (r < k) send_errors++;
    drain();
  }
  double t_stop = mono(), t_linger = t_stop + linger_ms * 1e-3;
  while (mono() < t_linger) {
    if (drain() == 0) sleep_s(200e-6);
  }
  long long drops = port_drops(local_port()), target_drops_end = port_drops(target_port);
  long long target_drops = target_drops_end >= 0 && target_drops_start >= 0 ? target_drops_end - target_drops_start : -1;

  uint64_t msent = sent - sent_at_measure;
  double mdur = t_stop - t_measure;
  uint64_t next_source = first_source + sent; // run.ts continues here so sources are not reused soon
  printf("{\"target\":\"%s\",\"offered_pps\":%.0f,\"warmup_s\":%.3f,\"duration_s\":%.3f,\"sent\":%llu,"
         "\"send_pps\":%.0f,\"received\":%llu,\"valid\":%llu,\"kod\":%llu,\"invalid\":%llu,\"duplicate\":%llu,"
         "\"replies_per_s\":%.0f,\"ratio\":%.5f,\"send_errors\":%llu,\"send_error\":%s%s%s,"
         "\"delay_s\":%.3f,\"warmup_sent\":%llu,\"warmup_valid\":%llu,\"sources\":%llu,\"first_source\":%llu,"
         "\"next_source\":%llu,\"source_interval_s\":%.2f,\"rcvbuf\":%d,\"rx_drops\":%lld,\"target_drops\":%lld,"
         "\"skipped\":%llu,\"max_behind\":%llu}\n",
         target, rate, warmup, mdur, (unsigned long long)msent, (double)msent / mdur,
         (unsigned long long)rx_count.received, (unsigned long long)rx_count.valid, (unsigned long long)rx_count.kod,
         (unsigned long long)rx_count.invalid, (unsigned long long)rx_count.duplicate, (double)rx_count.valid / mdur,
         msent ? (double)rx_count.valid / (double)msent : 0.0, (unsigned long long)send_errors,
         first_errno ? "\"" : "", first_errno ? strerror(first_errno) : "null", first_errno ? "\"" : "",
         delay, (unsigned long long)sent_at_measure, (unsigned long long)rx_count.warmup_valid,
         (unsigned long long)sources, (unsigned long long)first_source, (unsigned long long)next_source,
         (double)sources / rate, rcvbuf, drops, target_drops, (unsigned long long)skipped,
         (unsigned long long)max_behind);
  return 0;
}
