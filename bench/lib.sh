# shellcheck shell=bash disable=SC2034
# bench/lib.sh - helpers shared by the benchmark scripts (bash; sourced).
#
# Timing uses bash's $EPOCHREALTIME (no fork), so the clock adds the same
# few microseconds to vc and to the reference: what is timed is the fork,
# exec and wait of one command.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
VC=${VC:-$REPO/build/vc}
ROOTFS=${ROOTFS:-$REPO/build/rootfs}

# settle: sleep BENCH_SETTLE_MS (default 50) before a timed command, so
# that every run, vc's or crun's, starts on a quiet kernel. Moving a task
# into a cgroup v1 (both runtimes do it) waits for an RCU grace period,
# 5-25 ms here, unless another move happened in the last ~20 ms: without
# the pause a short run is timed warm from the run before it and a long one
# cold, which is a property of the loop, not of the runtime.
settle() {
  local ms=${SETTLE_MS:-${BENCH_SETTLE_MS:-50}}
  if [ "$ms" -gt 0 ]; then sleep "$(awk -v ms="$ms" 'BEGIN { print ms / 1000 }')"; fi
}

# regime NAME SETTLE_MS: BENCH_WARMUP untimed and BENCH_N timed rounds of
# the benchmark's vc_round and crun_round (ROUND: negative when untimed;
# they append timed samples to $TMP/vc.us and $TMP/crun.us), alternating,
# vc first in even rounds, each command after a pause of SETTLE_MS
# (settle); their medians in VC_US and REF_US, every sample on stderr.
# (n and warm: the benchmark's BENCH_N and BENCH_WARMUP)
# shellcheck disable=SC2154
regime() {
  local name=$1 i
  SETTLE_MS=$2
  : >"$TMP/vc.us"
  : >"$TMP/crun.us"
  for ((i = -warm; i < n; i++)); do
    if ((i % 2 == 0)); then vc_round "$i"; crun_round "$i"
    else crun_round "$i"; vc_round "$i"; fi
  done
  VC_US=$(median <"$TMP/vc.us")
  REF_US=$(median <"$TMP/crun.us")
  echo "$name: pause $2 ms: vc us: $(sort -n "$TMP/vc.us" | tr '\n' ' ')" >&2
  echo "$name: pause $2 ms: crun us: $(sort -n "$TMP/crun.us" | tr '\n' ' ')" >&2
}

# time_cmd LOG COMMAND...: run COMMAND with its output appended to LOG;
# sets T_US (wall microseconds) and T_RC (exit code).
time_cmd() {
  local log=$1 t0 t1
  shift
  t0=${EPOCHREALTIME/./}
  T_RC=0
  "$@" >>"$log" 2>&1 || T_RC=$?
  t1=${EPOCHREALTIME/./}
  T_US=$((t1 - t0))
}

# The crun side runs in bench/crun-worker, one bash coprocess in its own
# mount namespace. worker_start LOG; worker_cmd COMMAND... (sets T_US and
# T_RC, timed inside the worker the same way); worker_stop.
worker_start() {
  coproc WORKER { exec unshare -m "$BENCH_DIR/crun-worker" "$1"; }
}
worker_cmd() {
  echo "$*" >&"${WORKER[1]}"
  read -r T_US T_RC <&"${WORKER[0]}" || die "crun worker died"
}
worker_stop() {
  local fd=${WORKER[1]:-}
  if [ -n "$fd" ]; then exec {fd}>&-; fi
  if [ -n "${WORKER_PID:-}" ]; then wait "$WORKER_PID" 2>/dev/null || true; fi
  unset WORKER_PID
}

# Cleanup, for traps: every vc pod under ROOT (forced delete; if that
# fails, its sandbox's PID 1, by the pid in its record), every crun
# container whose ID starts with PREFIX, then the folder TMP.
cleanup_all() {
  local tmp=$1 root=$2 prefix=$3 dir id pid
  worker_stop
  for dir in "$root"/lib/pods/*/; do
    [ -d "$dir" ] || continue
    id=$(basename "$dir")
    if ! "$VC" --root "$root" pod delete --force "$id" >/dev/null 2>&1; then
      pid=$(sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' \
        "$root/run/pods/$id/hypervisor.json" 2>/dev/null || true)
      if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
      echo "bench: pod $id: forced delete failed" >&2
    fi
  done
  for id in $(crun list 2>/dev/null | awk -v p="$prefix" 'index($1, p) == 1 { print $1 }'); do
    crun_ns crun delete -f "$id" >/dev/null 2>&1 || echo "bench: crun $id: delete failed" >&2
  done
  for pid in ${REF_PIDS:-}; do kill -KILL "$pid" 2>/dev/null || true; done
  # Every mount under TMP, deepest first: ROOT/run, and what a pod whose
  # delete failed left there (a bind mount of the rootfs, which rm -rf
  # would empty). TMP is removed only once nothing is mounted in it.
  local m
  for m in $(awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  if awk -v t="$tmp/" 'index($5, t) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    echo "bench: $tmp: still has mounts, not removed" >&2
  else
    rm -rf --one-file-system "$tmp"
  fi
}

# bench_setup NAME [vm]: TMP (a fresh folder under BENCH_TMPDIR, default
# /tmp), ROOT (the vc --root in it), PREFIX (for crun container IDs), and
# the trap that cleans up. ROOT/run is a tmpfs, as /run/vc is by default:
# vc's runtime records live in memory, its configs (ROOT/lib) on disk.
# With "vm", the tools of the VM benchmarks are checked instead of crun;
# with "store" only vc (the store benchmarks, on the mock backend); with
# "fsync" only vc too, and ROOT/run stays on BENCH_TMPDIR's file system,
# where an fsync reaches the disk (on a tmpfs it costs nothing).
bench_setup() {
  case ${2:-} in
  vm) need_vm_tools ;;
  store | fsync) [ -x "$VC" ] || die "no $VC (run make)" ;;
  *) need_tools ;;
  esac
  TMP=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/vc-bench-$1.XXXXXX")
  ROOT=$TMP/root
  PREFIX=vcbench-$$-
  trap 'cleanup_all "$TMP" "$ROOT" "$PREFIX"' EXIT
  trap 'exit 130' INT TERM HUP
  mkdir -p "$ROOT/run"
  [ "${2:-}" != fsync ] || return 0
  mount -t tmpfs -o mode=0750 vc-bench "$ROOT/run" || die "cannot mount a tmpfs at $ROOT/run"
}

# The median of the numbers on stdin, one a line.
median() {
  sort -n | awk '{ v[NR] = $1 }
    END { if (NR == 0) exit 1
          print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# fmt SCALE N: N divided by SCALE, one decimal (us -> ms: fmt 1000 N).
fmt() { awk -v s="$1" -v n="$2" 'BEGIN { printf "%.1f", n / s }'; }

# ratio A B: A / B, two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

die() { echo "bench: $*" >&2; exit 1; }

need_tools() {
  [ -x "$VC" ] || die "no $VC (run make)"
  [ -x "$REPO/build/vc-agent" ] || die "no $REPO/build/vc-agent (run make)"
  [ -x "$ROOTFS/bin/busybox" ] || die "no $ROOTFS (run make rootfs)"
  command -v crun >/dev/null || die "no crun (apt-get install -y crun)"
}

need_vm_tools() {
  [ -x "$VC" ] || die "no $VC (run make)"
  [ -x "$ROOTFS/bin/busybox" ] || die "no $ROOTFS (run make rootfs)"
  [ -f "$GUEST/vmlinux" ] && [ -f "$GUEST/initrd" ] || die "no $GUEST (run make guest)"
  command -v qemu-system-x86_64 >/dev/null || die "no qemu-system-x86_64"
}

# --- the raw-QEMU reference of the VM benchmarks -------------------------
#
# The reference boots vc's own guest image (same kernel, same initrd) with
# vc's own QEMU command line, taken from a pod's QEMU process, minus what
# belongs to vc (its sockets, shares, console file), plus a
# small cpio appended to the initrd (the kernel unpacks concatenated
# archives) holding the reference init, chosen with rdinit=:
#   /bench-init       runs /bin/true (the pod's command), powers off
#   /bench-init-idle  runs /bin/true, says "bench-ready", stays up idle
#   /bench-init-echo  loads the guest's modules, opens the virtio-serial
#                     port named bench.0, says "bench-ready", and runs
#                     `cat` from that port back to it for each client
#                     (vm_stdin)
#   /bench-init-net   configures eth0 from bench.* kernel options, sends
#                     bench.rounds streams of bench.bytes to the gateway's
#                     bench.port, then pings it (bench/net)
GUEST=${GUEST:-$REPO/build/guest}

# ref_initrd OUT: vc's initrd with the reference inits appended.
ref_initrd() {
  local out=$1 dir
  dir=$(mktemp -d "$TMP/refinit.XXXXXX")
  printf '#!/bin/sh\n/bin/true\nexec poweroff -f\n' >"$dir/bench-init"
  printf '#!/bin/sh\n/bin/true\necho bench-ready >/dev/console\nexec sleep 2147483647\n' \
    >"$dir/bench-init-idle"
  cat >"$dir/bench-init-echo" <<'INIT'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
while read -r m; do insmod "$m"; done </etc/modules
for i in $(seq 100); do
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = bench.0 ] && [ -c "/dev/${p##*/}" ] && port=/dev/${p##*/}
  done
  [ -n "$port" ] && break
  sleep 0.1
done
exec 3<>"$port"
echo bench-ready >/dev/console
# A port reads as at its end while no host client is connected: cat
# returns then, and runs again for the next client.
while :; do cat <&3 >&3; sleep 0.05; done
INIT
  cat >"$dir/bench-init-net" <<'INIT'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
while read -r m; do insmod "$m"; done </etc/modules
for w in $(cat /proc/cmdline); do
  case $w in bench.*=*) k=${w%%=*}; eval "${k#bench.}=${w#*=}" ;; esac
done
ip link set lo up; ip addr add "$addr" dev eth0; ip link set eth0 up
ip route add default via "$gw"
echo bench-ready >/dev/console
i=0
while [ "$i" -lt "$rounds" ]; do
  until head -c "$bytes" /dev/zero | nc "$gw" "$port"; do sleep 0.2; done
  i=$((i + 1)); sleep 1
done
echo bench-ping >/dev/console
ping -c "$pings" -i 0.2 "$gw" >/dev/console 2>&1
echo bench-done >/dev/console
exec sleep 2147483647
INIT
  chmod 0755 "$dir/bench-init" "$dir/bench-init-idle" "$dir/bench-init-echo" "$dir/bench-init-net"
  (cd "$dir" && printf 'bench-init\nbench-init-idle\nbench-init-echo\nbench-init-net\n' |
    cpio -o -H newc -R 0:0 --quiet) >"$dir/ref.cpio"
  cat "$GUEST/initrd" "$dir/ref.cpio" >"$out"
}

# NO_THP CMD...: runs CMD without transparent huge pages (prctl
# PR_SET_THP_DISABLE, kept across exec), as vc runs QEMU under TCG: the
# memory benchmarks start their raw QEMUs so, to compare like with like
# (ref_args empties it under KVM).
# shellcheck disable=SC2034
NO_THP=(python3 -c 'import ctypes, os, sys
if ctypes.CDLL(None).prctl(41, 1, 0, 0, 0) != 0: sys.exit("prctl PR_SET_THP_DISABLE failed")
os.execvp(sys.argv[1], sys.argv[1:])')

# ref_args PID INITRD RDINIT CONSOLE [TB]: REF_ARGS, the argv of a
# reference QEMU made from the argv of vc's QEMU process PID. Under TCG
# its translation cache is the pod's, or TB MiB when given: a benchmark
# that times a raw boot gives it what vc gives a VM that boots (64; a pod
# restored from a template has a smaller one, which would slow the boot).
ref_args() {
  local pid=$1 initrd=$2 rdinit=$3 console=$4 tb=${5:-} a i=0
  local -a argv=()
  mapfile -d '' -t argv <"/proc/$pid/cmdline" || die "no QEMU process $pid"
  [ ${#argv[@]} -gt 1 ] || die "QEMU process $pid: empty command line"
  REF_ARGS=("${argv[0]}" -name vc-bench-ref -serial "file:$console")
  while [ $i -lt ${#argv[@]} ]; do
    a=${argv[$i]}
    case $a in
    -name | -qmp | -chardev | -device | -fsdev | -netdev | -serial | -pidfile | -monitor | -incoming)
      i=$((i + 2)); continue ;;
    -daemonize) i=$((i + 1)); continue ;;
    # (a raw boot's RAM is QEMU's own, not a template's memfd)
    -object) i=$((i + 2)); continue ;;
    -machine) REF_ARGS+=(-machine "${argv[$((i + 1))]%%,memory-backend=*}"); i=$((i + 2)); continue ;;
    -initrd) REF_ARGS+=(-initrd "$initrd"); i=$((i + 2)); continue ;;
    -accel)
      a=${argv[$((i + 1))]}
      [ -z "$tb" ] || a=$(sed "s/tb-size=[0-9]*/tb-size=$tb/" <<<"$a")
      [ "${a%%,*}" = tcg ] || NO_THP=() # (vc keeps them under KVM)
      REF_ARGS+=(-accel "$a"); i=$((i + 2)); continue ;;
    -append) REF_ARGS+=(-append "${argv[$((i + 1))]} rdinit=$rdinit"); i=$((i + 2)); continue ;;
    esac
    [ $i -eq 0 ] || REF_ARGS+=("$a")
    i=$((i + 1))
  done
}

# qemu_pid ID: the pid of pod ID's QEMU, from its hypervisor.json.
qemu_pid() {
  sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' "$ROOT/run/pods/$1/hypervisor.json" 2>/dev/null
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; returns once PID is gone.
stop_pid() {
  local t
  kill -TERM "$1" 2>/dev/null || return 0
  for ((t = 0; t < 50; t++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
}

# smaps KEY PID: the total of KEY (Rss, Pss, Anonymous...) over a process's
# mappings, in KiB, from /proc/PID/smaps_rollup.
smaps() {
  awk -v k="$1:" '$1 == k { print $2; exit }' "/proc/$2/smaps_rollup"
}

# crun_bundle DIR ARG...: an OCI bundle in DIR from `crun spec`, running
# ARG... on the busybox rootfs, without a terminal.
crun_bundle() {
  local dir=$1 args
  shift
  args=$(printf '"%s", ' "$@")
  mkdir -p "$dir"
  (cd "$dir" && crun spec)
  sed -i -e 's|"terminal": true|"terminal": false|' \
    -e '/"args": \[/,/\]/s|^\(\s*\)"sh"$|\1'"${args%, }"'|' \
    -e 's|"path": "rootfs"|"path": "'"$ROOTFS"'"|' "$dir/config.json"
  if ! grep -q '"terminal": false' "$dir/config.json" ||
    ! grep -qF "${args%, }" "$dir/config.json" ||
    ! grep -qF "\"path\": \"$ROOTFS\"" "$dir/config.json"; then
    die "could not edit $dir/config.json (crun spec changed?)"
  fi
}

# crun_ns COMMAND...: run a crun command in a private mount namespace
# without the cgroup v2 mount, which crun 1.8 refuses in hybrid mode
# (/work/shared/PLATFORM.md). A no-op umount where there is none.
crun_ns() {
  unshare -m bash -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' crun_ns "$@"
}

# result NAME KEY=VALUE...: the machine-readable line bench/run reads.
result() {
  local IFS='|'
  echo "RESULT|$*"
}
