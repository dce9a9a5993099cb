#!/usr/bin/env bash
# Installs the real NTP implementations the interoperability tests talk to (see docs/testing.md):
#   - chrony (chronyd as client and as server, NTS both ways), Debian package, its service left stopped;
#   - openssl, for the NTS tests' certificates;
#   - python3-ntplib, iproute2, util-linux (ip, unshare, nsenter);
#   - dnsmasq-base: the dnsmasq binary alone, no system service, the DNS server the reverse-DNS access
#     list tests start on loopback (test/server/name-resolver.test.ts);
#   - chromium: Debian's headless-capable browser, driven by playwright-core (executablePath
#     /usr/bin/chromium) in the dashboard's end-to-end test (test/integration/dashboard.test.ts);
#   - NTPsec's ntpdig and ntpq, unpacked into .peers/ntpsec/ of the repository and run through
#     wrappers in .peers/bin/. The ntpsec package itself is never installed: it conflicts with chrony.
#     Its ntpd (.peers/ntpsec/usr/sbin/ntpd, same package) is the rate-limiting server of the client
#     tests, run in a network namespace through setpriv (util-linux) without CAP_SYS_TIME.
#   - nginx with libnginx-mod-stream (Debian 12 builds the `stream` module, UDP proxying and
#     `hash ... consistent` included, as that separate dynamic module): the source-hash balancer in front
#     of a fleet of servers (deploy/nginx-ntp.conf, docs/fleet.md); and redis-server, the store a fleet
#     shares its blocklist through. The tests start both themselves; their services are left stopped.
# Idempotent. Needs root only when something is missing; run by CI as root on Debian 12.
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
peers="$repo/.peers"
ntpsec_root="$peers/ntpsec"
bin_dir="$peers/bin"
python=/usr/bin/python3

say() { printf 'install-peers: %s\n' "$*"; }
die() {
  printf 'install-peers: ERROR: %s\n' "$*" >&2
  exit 1
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 is missing and installing it needs root: run 'sudo scripts/install-peers.sh'"
}

# `apt-get update` costs time and network: run it at most once, and only when something is missing.
apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    apt_updated=1
  fi
}

# --- 1. Debian packages -------------------------------------------------------------------------
# libbsd0 and libssl3 are what NTPsec's libntpc.so links against; python3 runs its scripts. dnsmasq-base
# (not dnsmasq, which would install and start a system resolver service) gives /usr/sbin/dnsmasq only.
# chromium is Debian's build (playwright-core's own browser download cannot be used: it fetches from outside
# the package registries).
packages=(chrony python3 python3-ntplib iproute2 util-linux libbsd0 libssl3 dnsmasq-base chromium)
# libcap2 is what NTPsec's ntpd links against besides libbsd0 and libssl3.
packages+=(libcap2)
# The fleet's balancer and shared blocklist (docs/fleet.md).
packages+=(nginx libnginx-mod-stream redis-server)
# openssl: the NTS tests make their own CA and server certificates (test/helpers/nts.ts); chrony's NTS is
# built in (its +NTS).
packages+=(openssl)
missing=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  need_root "${missing[*]}"
  apt_update_once
  # Keep maintainer scripts from starting chronyd at all (it would hold port 123 and try to set the
  # clock): policy-rc.d answering 101 is Debian's "do not start services" switch. Put it in place
  # only if the machine has none, and remove it again afterwards.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    die "apt-get install ${missing[*]} failed"
  if [ "$own_policy" -eq 1 ]; then
    rm -f "$policy"
    trap - EXIT
  fi
fi

# --- 2. No chronyd service left running -----------------------------------------------------------
# The tests start their own chronyd instances with private configurations; a system one would hold
# port 123 and the default command socket.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  if systemctl is-active --quiet chrony.service 2>/dev/null; then
    need_root "a stopped chrony service"
    say "stopping chrony.service"
    systemctl stop chrony.service || die "systemctl stop chrony.service failed"
  fi
elif [ -x /etc/init.d/chrony ] && [ -e /run/chrony/chronyd.pid ]; then
  need_root "a stopped chrony service"
  say "stopping the chrony init script service"
  /etc/init.d/chrony stop >/dev/null 2>&1 || true
fi
# Whatever is left of the system daemon is known by its pidfile (the tests' own chronyd instances
# write theirs elsewhere, so they are never touched here).
if [ -e /run/chrony/chronyd.pid ]; then
  pid=$(cat /run/chrony/chronyd.pid 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "chronyd" ]; then
    need_root "a stopped chronyd"
    say "killing the system chronyd (pid $pid)"
    kill "$pid" || true
    for _ in $(seq 50); do
      [ -e "/proc/$pid" ] || break
      sleep 0.1
    done
    [ -e "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null || true
    [ -e "/proc/$pid" ] && die "could not stop the system chronyd (pid $pid)"
  fi
fi

# The same for nginx and redis-server: the tests start private instances on addresses of their own; the
# system services would hold port 80 and 6379. Disabled as well as stopped, so a reboot does not start them.
for svc in nginx redis-server; do
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    if systemctl is-enabled --quiet "$svc.service" 2>/dev/null || systemctl is-active --quiet "$svc.service" 2>/dev/null; then
      need_root "a stopped $svc service"
      say "stopping and disabling $svc.service"
      systemctl disable --now "$svc.service" >/dev/null 2>&1 || die "systemctl disable --now $svc.service failed"
    fi
    continue
  fi
  # No running systemd (a container): disabling only removes the unit's links, so that a later boot with
  # systemd does not start it either.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet "$svc.service" 2>/dev/null; then
    need_root "a disabled $svc service"
    say "disabling $svc.service"
    systemctl disable "$svc.service" >/dev/null 2>&1 || die "systemctl disable $svc.service failed"
  fi
  if [ -x "/etc/init.d/$svc" ]; then
    pidfile=/run/$svc.pid
    [ "$svc" = redis-server ] && pidfile=/run/redis/redis-server.pid
    if [ -e "$pidfile" ]; then
      need_root "a stopped $svc service"
      say "stopping the $svc init script service"
      "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
  fi
done

# --- 3. NTPsec's ntpdig and ntpq, unpacked, not installed -------------------------------------------
# ntpq is in package ntpsec, ntpdig in ntpsec-ntpdig, and both import the `ntp` python module of
# python3-ntp, whose ntp/ntpc.py loads libntpc.so through ctypes. All three come from one source
# package and must carry the same version.
ntpsec_debs=(ntpsec ntpsec-ntpdig python3-ntp)
marker="$ntpsec_root/.version"

ntpsec_candidate() {
  apt-cache policy ntpsec 2>/dev/null | awk '/Candidate:/ { print $2 }'
}

wrappers_work() {
  [ -x "$bin_dir/ntpdig" ] && [ -x "$bin_dir/ntpq" ] &&
    "$bin_dir/ntpdig" --version >/dev/null 2>&1 && "$bin_dir/ntpq" --version >/dev/null 2>&1
}

unpack_ntpsec() {
  need_root "NTPsec's ntpdig/ntpq (.peers/ntpsec)"
  local version
  version=$(ntpsec_candidate)
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    apt_update_once
    version=$(ntpsec_candidate)
  fi
  [ -n "$version" ] && [ "$version" != "(none)" ] || die "apt knows no candidate for package ntpsec"

  local tmp
  tmp=$(mktemp -d)
  # apt's download sandbox user must be able to write there, or apt warns and falls back to root.
  if id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
  local specs=()
  for p in "${ntpsec_debs[@]}"; do specs+=("$p=$version"); done
  say "apt-get download ${specs[*]}"
  (cd "$tmp" && apt-get download -qq "${specs[@]}") || {
    rm -rf "$tmp"
    die "apt-get download ${specs[*]} failed"
  }

  rm -rf "$ntpsec_root"
  mkdir -p "$ntpsec_root"
  for deb in "$tmp"/*.deb; do
    dpkg-deb -x "$deb" "$ntpsec_root" || {
      rm -rf "$tmp"
      die "dpkg-deb -x $deb failed"
    }
  done
  rm -rf "$tmp"

  # ntp/ntpc.py looks for libntpc.so beside itself before anywhere else (the installed package puts
  # it under /usr/lib/<triplet>/ntp/, which does not exist here): link it there.
  local lib pkgdir
  lib=$(find "$ntpsec_root/usr/lib" -type f -name 'libntpc.so.*' | head -n 1)
  pkgdir=$(find "$ntpsec_root/usr/lib" -type d -path '*/dist-packages/ntp' | head -n 1)
  [ -n "$lib" ] || die "libntpc.so not found in the unpacked python3-ntp"
  [ -n "$pkgdir" ] || die "the python module ntp/ not found in the unpacked python3-ntp"
  ln -sf "$(realpath --relative-to="$pkgdir" "$lib")" "$pkgdir/libntpc.so"
  printf '%s\n' "$version" >"$marker"
}

write_wrapper() {
  local name=$1 script=$2 content
  content=$(
    cat <<EOF
#!/bin/sh
# Written by scripts/install-peers.sh: runs NTPsec's $name from the unpacked packages in .peers/ntpsec
# with the system python3 (the ntpsec package is not installed: it conflicts with chrony).
here=\$(dirname "\$(readlink -f "\$0")")
root="\$here/../ntpsec"
PYTHONPATH="\$root/usr/lib/python3/dist-packages\${PYTHONPATH:+:\$PYTHONPATH}"
export PYTHONPATH
exec $python "\$root/$script" "\$@"
EOF
  )
  # Rewrite only when different, so that a check run by a non-root user changes nothing.
  if [ -x "$bin_dir/$name" ] && [ "$(cat "$bin_dir/$name")" = "$content" ]; then
    return 0
  fi
  need_root "the wrapper .peers/bin/$name"
  mkdir -p "$bin_dir"
  printf '%s\n' "$content" >"$bin_dir/$name"
  chmod 755 "$bin_dir/$name"
}

ntpc_loads() {
  PYTHONPATH="$ntpsec_root/usr/lib/python3/dist-packages" "$python" -c 'import ntp.ntpc' >/dev/null 2>&1
}

write_wrapper ntpdig usr/bin/ntpdig
write_wrapper ntpq usr/bin/ntpq
if [ -f "$marker" ] && wrappers_work && ntpc_loads; then
  say "NTPsec $(cat "$marker") already unpacked in .peers/ntpsec"
else
  unpack_ntpsec
fi

# --- 4. Verify that every tool runs -------------------------------------------------------------------
failed=0
check() {
  local what=$1
  shift
  local out
  if out=$("$@" 2>&1); then
    say "ok   $what: $(printf '%s' "$out" | head -n 1)"
  else
    printf 'install-peers: FAIL %s: %s\n' "$what" "$out" >&2
    failed=1
  fi
}
check chronyd chronyd -v
check ntplib "$python" -c 'import ntplib; print("ntplib", ntplib.__file__)'
check ntpdig "$bin_dir/ntpdig" --version
check ntpq "$bin_dir/ntpq" --version
# --version does not prove that libntpc.so loads; importing ntp.ntpc does.
check libntpc env PYTHONPATH="$ntpsec_root/usr/lib/python3/dist-packages" "$python" -c \
  'import ntp.ntpc; print("libntpc loaded")'
check ip ip -V
check unshare unshare --version
check nsenter nsenter --version
check setpriv setpriv --version
check ntpd "$ntpsec_root/usr/sbin/ntpd" --version
check dnsmasq dnsmasq --version
check nginx /usr/sbin/nginx -v
# The stream module is a separate package: prove that it is there and that nginx loads it.
check nginx-stream sh -c 'test -f /usr/lib/nginx/modules/ngx_stream_module.so && echo ngx_stream_module.so'
check redis-server /usr/bin/redis-server --version
# Debian's launcher script may print shell noise before the version (its /dev/shm probe): show the version
# line, and everything when there is none.
check chromium sh -c 'out=$(/usr/bin/chromium --version 2>&1) && printf "%s\n" "$out" | grep "^Chromium " ||
  { printf "%s\n" "$out"; exit 1; }'

if [ "$failed" -ne 0 ]; then
  die "some peers do not run (see above); rerun scripts/install-peers.sh as root"
fi
if wrappers_work; then
  say "all peers installed; ntpdig/ntpq are in $bin_dir"
else
  die "the ntpdig/ntpq wrappers in $bin_dir do not run"
fi
