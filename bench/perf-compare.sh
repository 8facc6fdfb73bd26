#!/usr/bin/env bash
# Compares the performance of two commits of Tina on this machine, in one run.
#
#   bash bench/perf-compare.sh [options] <base> [<head>]
#
# <base> and <head> are anything `git rev-parse` takes; <head> defaults to the working tree
# (uncommitted changes included). Each side is built in release, in its own source tree and
# target directory under the cache (default target/perf-compare; a re-run rebuilds nothing that
# did not change). By default both sides run the benchmark code of <head>'s bench/ (copied over
# <base>'s), so only the library under test differs; --own-harness builds each side's own bench/.
#
# 1. B2 ping-pong under callgrind: instructions per send + dispatch = (I(150000) - I(50000)) /
#    100000, where I(n) is the instruction count of `tina-bench perf pingpong --messages n`
#    (start-up cancels out). Deterministic. Fails if head > base × (1 + limit/100).
# 2. B2 ping-pong in wall time (reported, not gated: callgrind is its gate), B1 (ring, Tina's
#    two rows, capacities 16 and 1024) and B3 (TCP echo closed loop, Tina
#    io_uring and epoll, 64 connections of 1 KiB, 1 s warm-up + 5 s) through `tina-bench perf`,
#    the two builds interleaved round by round (base head, head base, base head, ...). For every
#    metric: each side's median and the median (min-max) of the per-round ratios head ÷ base.
#    Fails if a gated metric (the costs: ns per message, server CPU per request) has a median
#    ratio above the limit.
#
# Exit status: 0 every gate met, 1 a gate missed, 2 usage, build or run error.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bash bench/perf-compare.sh [options] <base> [<head>]
  <base>, <head>            commits; <head> defaults to the working tree
  --quick                   check the script: one short round of each workload, timing not gated
  --limit-instructions P    callgrind gate: head may exceed base by P percent (default 2)
  --limit-ratio R           B1/B3 gate: median per-round ratio head ÷ base at most R (default 1.05)
  --rounds N                interleaved rounds of B1 and B3 (default 11 for B1, 5 for B3)
  --callgrind-only          skip B1 and B3
  --no-gate                 report only: exit 0 whatever the numbers (errors still exit 2)
  --own-harness             build each side's own bench/ (both must have `tina-bench perf`)
  --cache DIR               sources, target directories and logs (default <repo>/target/perf-compare)
EOF
}

die() {
    echo "perf-compare: $*" >&2
    exit 2
}

quick=0
limit_pct=2
limit_ratio=1.05
rounds=""
callgrind_only=0
gate=1
own_harness=0
cache=""
positional=()
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --limit-instructions) limit_pct="${2:?--limit-instructions needs a percentage}"; shift ;;
    --limit-ratio) limit_ratio="${2:?--limit-ratio needs a ratio}"; shift ;;
    --rounds) rounds="${2:?--rounds needs a count}"; shift ;;
    --callgrind-only) callgrind_only=1 ;;
    --no-gate) gate=0 ;;
    --own-harness) own_harness=1 ;;
    --cache) cache="${2:?--cache needs a directory}"; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) positional+=("$1") ;;
    esac
    shift
done
[ ${#positional[@]} -ge 1 ] && [ ${#positional[@]} -le 2 ] || { usage >&2; die "give <base> [<head>]"; }
number='^[0-9]+([.][0-9]+)?$'
[[ $limit_pct =~ $number ]] || die "--limit-instructions takes a number (percent)"
[[ $limit_ratio =~ $number ]] || die "--limit-ratio takes a number"
[ -z "$rounds" ] || [[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds takes a positive count"

repo=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
cache=${cache:-$repo/target/perf-compare}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
logs=$cache/logs
mkdir -p "$logs"

resolve() {
    git -C "$repo" rev-parse --verify --quiet "$1^{commit}" || die "not a commit: $1"
}
base=$(resolve "${positional[0]}")
if [ ${#positional[@]} -eq 2 ]; then
    head=$(resolve "${positional[1]}")
else
    head=worktree
fi

short() { if [ "$1" = worktree ]; then echo worktree; else echo "${1:0:7}"; fi; }
dirty=$(git -C "$repo" status --porcelain)

# The source tree of a side: the repository itself for the working tree, else the commit's files
# exported once into the cache (with fresh mtimes, so cargo never mistakes them for older builds).
source_of() {
    local rev=$1
    if [ "$rev" = worktree ]; then
        echo "$repo"
        return
    fi
    local src=$cache/src/$rev
    if [ ! -f "$src/.perf-compare-exported" ]; then
        rm -rf "$src"
        mkdir -p "$src"
        git -C "$repo" archive "$rev" | tar -x -m -C "$src"
        touch "$src/.perf-compare-exported"
    fi
    echo "$src"
}

# A digest of a bench/ directory's files (names and contents; scripts like this one excepted,
# they are not part of the build).
digest_of() {
    (cd "$1" && find . -type f ! -path './target/*' ! -name '*.sh' -print0 | LC_ALL=C sort -z | xargs -0 sha1sum |
        sha1sum | cut -c1-16)
}

# Puts the harness (a bench/ directory) in place in an exported tree; "own" restores the commit's.
place_harness() {
    local rev=$1 src=$2 harness=$3 want
    if [ "$harness" = own ]; then want=own; else want=$(digest_of "$harness"); fi
    if [ "$(cat "$src/.perf-compare-harness" 2>/dev/null || echo own)" = "$want" ]; then
        return
    fi
    rm -rf "$src/bench"
    if [ "$harness" = own ]; then
        git -C "$repo" archive "$rev" bench | tar -x -m -C "$src"
    else
        cp -r "$harness" "$src/bench" # fresh mtimes: cargo rebuilds the harness
    fi
    echo "$want" >"$src/.perf-compare-harness"
}

# Builds `tina-bench` for a side and copies it to $cache/bin/<side>; prints the binary's path.
build() {
    local side=$1 rev=$2 src=$3 target log
    if [ "$rev" = worktree ]; then
        target=${CARGO_TARGET_DIR:-$repo/target}
    else
        target=$cache/target/$rev
    fi
    log=$logs/build-$side.log
    # A commit built for the first time starts from another cached build's third-party crates
    # (the same for every commit of the same Cargo.lock; cargo rebuilds any that differ). The
    # workspace's own packages (all named tina-*) lose their fingerprints, so they are rebuilt.
    if [ "$rev" != worktree ] && [ ! -d "$target/release" ]; then
        local seed
        seed=$(ls -dt "$cache"/target/*/release 2>/dev/null | head -n 1 || true)
        if [ -n "$seed" ]; then
            echo "seeding $target with the third-party crates of $(dirname "$seed")" >&2
            mkdir -p "$target"
            cp -a "$seed" "$target/release"
            rm -rf "$target/release/.fingerprint"/tina-* "$target/release/deps"/*tina_* \
                "$target/release"/*tina[-_]* "$target/release/incremental"
        fi
    fi
    echo "building $side ($(short "$rev")) in $src (target $target) ..." >&2
    if ! (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release -p tina-bench) >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "build of $side failed (log: $log)"
    fi
    mkdir -p "$cache/bin/$side"
    cp "$target/release/tina-bench" "$cache/bin/$side/tina-bench"
    if ! "$cache/bin/$side/tina-bench" perf --help >/dev/null 2>&1; then
        die "the harness of $side has no \`tina-bench perf\` command (drop --own-harness)"
    fi
    echo "$cache/bin/$side/tina-bench"
}

head_src=$(source_of "$head")
if [ "$own_harness" = 1 ]; then
    harness=own
else
    harness=$head_src/bench
fi
if [ "$head" != worktree ]; then
    place_harness "$head" "$head_src" own
fi
head_bin=$(build head "$head" "$head_src")
# The base is the same tree as the head when it is the same commit, or the head's commit with a
# clean working tree: one build serves both.
if [ "$base" = "$head" ] || { [ "$head" = worktree ] && [ -z "$dirty" ] &&
    [ "$base" = "$(git -C "$repo" rev-parse HEAD)" ]; }; then
    echo "base and head are the same tree: one build serves both" >&2
    base_bin=$head_bin
else
    base_src=$(source_of "$base")
    place_harness "$base" "$base_src" "$harness"
    base_bin=$(build base "$base" "$base_src")
fi

describe() {
    if [ "$1" = worktree ]; then
        local at
        at=$(git -C "$repo" log -1 --format='%h' HEAD)
        if [ -n "$dirty" ]; then echo "working tree (HEAD $at + uncommitted changes)"; else echo "working tree (HEAD $at, clean)"; fi
    else
        git -C "$repo" log -1 --format='%h %s' "$1" | cut -c1-90
    fi
}
echo
echo "# perf-compare"
echo
echo "base: $(describe "$base")"
echo "head: $(describe "$head")"
if [ "$own_harness" = 1 ]; then
    echo "harness: each side's own bench/"
else
    echo "harness: head's bench/ on both sides (same benchmark code; only the library differs)"
fi
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u '+%Y-%m-%d %H:%M UTC')"
# The 1-minute load average, with a warning when other work shares the CPUs.
load() {
    awk -v n="$(nproc)" '{ printf "%s%s", $1, ($1 > n ? " (above the " n " CPUs: other work shares them, timing ratios are noisy)" : "") }' /proc/loadavg
}
echo "load average (1 min) at the start: $(load)"
[ "$quick" = 1 ] && echo "QUICK: a check of the script; the timing numbers mean nothing"
echo

failed=0

# ── 1. callgrind: instructions per send + dispatch ──
command -v valgrind >/dev/null || die "valgrind is not installed"
if [ "$quick" = 1 ]; then small=5000 large=15000; else small=50000 large=150000; fi

# Instructions executed by `perf pingpong --messages <n>` under callgrind.
instructions() {
    local side=$1 bin=$2 n=$3 out=$logs/callgrind-$1-$3.out
    if ! valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" perf pingpong --messages "$n" \
        >"$logs/callgrind-$side-$n.stdout" 2>"$logs/callgrind-$side-$n.stderr"; then
        tail -n 20 "$logs/callgrind-$side-$n.stderr" >&2
        die "callgrind run of $side failed"
    fi
    local count
    count=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
    [[ $count =~ ^[0-9]+$ ]] || die "no instruction count in $out"
    echo "$count"
}

per_message() { # side bin
    local a b
    a=$(instructions "$1" "$2" "$small")
    b=$(instructions "$1" "$2" "$large")
    awk -v a="$a" -v b="$b" -v d=$((large - small)) 'BEGIN { printf "%.2f", (b - a) / d }'
}
base_ipm=$(per_message base "$base_bin")
head_ipm=$(per_message head "$head_bin")
verdict=$(awk -v b="$base_ipm" -v h="$head_ipm" -v p="$limit_pct" \
    'BEGIN { r = h / b; lim = 1 + p / 100; printf "%.4f %.4f %s", r, lim, (r <= lim ? "ok" : "OVER") }')
read -r ratio limit ok <<<"$verdict"
echo "## B2 ping-pong under callgrind: instructions per send + dispatch"
echo
echo "(I($large) - I($small)) / $((large - small)), I(n) = instructions of \`tina-bench perf pingpong --messages n\`"
echo
echo "| side | commit | instructions per send + dispatch |"
echo "|---|---|---:|"
echo "| base | $(short "$base") | $base_ipm |"
echo "| head | $(short "$head") | $head_ipm |"
echo
echo "head ÷ base: $ratio (limit $limit): $ok"
echo "callgrind $(short "$base") $base_ipm $(short "$head") $head_ipm ratio $ratio limit $limit $ok"
[ "$ok" = ok ] || failed=1
echo

# ── 2. B2 (wall time, reported), B1 and B3, the two builds interleaved ──
if [ "$callgrind_only" = 0 ]; then
    if [ "$quick" = 1 ]; then
        ring_rounds=${rounds:-1} tcp_rounds=${rounds:-1}
        pingpong_args=(--messages 20000)
        ring_args=(--messages 20000)
        tcp_args=(--conns 16 --warmup 0.2 --seconds 0.5)
    else
        ring_rounds=${rounds:-11} tcp_rounds=${rounds:-5}
        pingpong_args=(--messages 2000000)
        ring_args=(--messages 1000000)
        tcp_args=(--conns 64 --size 1024 --warmup 1 --seconds 5)
    fi
    results=$logs/rounds.txt
    : >"$results"
    # One round of a workload: both sides, the order alternating from round to round.
    run_round() {
        local workload=$1 round=$2 side bin
        shift 2
        local order=(base head)
        [ $((round % 2)) = 0 ] && order=(head base)
        for side in "${order[@]}"; do
            if [ "$side" = base ]; then bin=$base_bin; else bin=$head_bin; fi
            local out=$logs/$workload-$round-$side.out
            if ! "$bin" perf "$workload" "$@" >"$out" 2>"$logs/$workload-$round-$side.stderr"; then
                tail -n 20 "$logs/$workload-$round-$side.stderr" >&2
                die "\`tina-bench perf $workload\` of $side failed in round $round"
            fi
            awk -v r="$round" -v s="$side" '$1 == "metric" { print r, s, $2, $3, $4, $5 }' "$out" >>"$results"
        done
    }
    echo "running B2: $ring_rounds round(s) of \`perf pingpong ${pingpong_args[*]}\` per side ..." >&2
    for ((r = 1; r <= ring_rounds; r++)); do run_round pingpong "$r" "${pingpong_args[@]}"; done
    echo "running B1: $ring_rounds round(s) of \`perf ring ${ring_args[*]}\` per side ..." >&2
    for ((r = 1; r <= ring_rounds; r++)); do run_round ring "$r" "${ring_args[@]}"; done
    echo "running B3: $tcp_rounds round(s) of \`perf tcp ${tcp_args[*]}\` per side ..." >&2
    for ((r = 1; r <= tcp_rounds; r++)); do run_round tcp "$r" "${tcp_args[@]}"; done

    echo "## B2, B1 and B3, the two builds interleaved"
    echo
    echo "B2: $ring_rounds round(s) of \`tina-bench perf pingpong ${pingpong_args[*]}\` (wall time, unpinned;"
    echo "callgrind above is its gate); B1: $ring_rounds round(s) of \`tina-bench perf ring ${ring_args[*]}\`; B3: $tcp_rounds round(s) of"
    echo "\`tina-bench perf tcp ${tcp_args[*]}\`; per round base and head in alternating order."
    echo "Ratios head ÷ base per round (above 1: head has the larger number); gated: costs ('gate')."
    echo
    echo "| metric | unit | base median | head median | head ÷ base per round, median (min–max) | verdict |"
    echo "|---|---|---:|---:|---:|---|"
    # A metric's median ratio, per line: "<name> <ratio median> <verdict>" after the table rows.
    awk -v limit="$limit_ratio" -v quick="$quick" '
        function median(a, n,    i, j, t, s) {
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        {
            key = $3
            if (!(key in unit)) { order[++names] = key; unit[key] = $5; kind[key] = $6 }
            value[key, $1, $2] = $4
            if ($1 > rounds[key]) rounds[key] = $1
        }
        END {
            bad = 0
            for (k = 1; k <= names; k++) {
                key = order[k]; n = 0
                for (r = 1; r <= rounds[key]; r++) {
                    if (!((key, r, "base") in value) || !((key, r, "head") in value)) continue
                    n++; b[n] = value[key, r, "base"]; h[n] = value[key, r, "head"]
                    q[n] = (b[n] > 0) ? h[n] / b[n] : 0
                    if (n == 1 || q[n] < lo) lo = q[n]
                    if (n == 1 || q[n] > hi) hi = q[n]
                }
                if (n == 0) continue
                m = median(q, n)
                if (kind[key] != "gate") v = "info"
                else if (quick) v = (m <= limit ? "ok" : "over") " (quick: not gated)"
                else if (m <= limit) v = "ok (≤ " limit ")"
                else { v = "**OVER " limit "**"; bad = 1 }
                printf "| %s | %s | %.0f | %.0f | %.3f (%.3f–%.3f) | %s |\n", key, unit[key], median(b, n), median(h, n), m, lo, hi, v
            }
            exit bad
        }' "$results" || failed=1
    echo
    echo "per-round numbers: $results (round side metric value unit kind)"
fi

echo
echo "load average (1 min) at the end: $(load)"
if [ "$failed" = 0 ]; then
    echo "perf-compare: PASS"
elif [ "$gate" = 0 ]; then
    echo "perf-compare: a limit was exceeded (not gated: --no-gate)"
else
    echo "perf-compare: FAIL (a limit was exceeded)"
    exit 1
fi
