#!/usr/bin/env bash
# Builds the two-core mps2-an521 program (one Tina shard per core) and runs it under QEMU, once
# with single-threaded TCG (the two vCPUs interleaved on one host thread) and once with
# multi-threaded TCG (one host thread per vCPU, truly parallel).
#
#   run.sh             the real program: both runs must exit 0 and print a line with PASS;
#                      then the `defmt` build once (single-threaded): PASS, and defmt frames
#                      on semihosting stderr (decoded if `defmt-print` is on PATH)
#   run.sh --negative  the negative variants (cargo features): every run must fail the
#                      expected way, i.e. exit 1 with the expected FAIL line
#
# Exit status: 0 when everything went as expected, 1 otherwise. If QEMU cannot be had,
# prints a line starting with `SKIPPED:` and exits 0 (the caller decides what that means).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/../.." && pwd)
target_triple=thumbv8m.main-none-eabi
bin_name=tina-qemu-an521
qemu_timeout_s=120
threadings=(single multi)

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

mode=positive
case "${1:-}" in
"") ;;
--negative) mode=negative ;;
-h | --help)
    usage
    exit 0
    ;;
*)
    usage >&2
    exit 2
    ;;
esac

# --- QEMU -----------------------------------------------------------------------------------
install_log=$(mktemp)
trap 'rm -f "$install_log"' EXIT
if ! qemu_lines=$(bash "$repo_root/.ci/install-qemu.sh" 2>"$install_log"); then
    cat "$install_log" >&2
    echo "SKIPPED: qemu-system-arm is not available: $(tail -n1 "$install_log")"
    exit 0
fi
qemu=$(printf '%s\n' "$qemu_lines" | tail -n1)
echo "run.sh: QEMU: $qemu ($("$qemu" --version | head -n1))"

# --- build ----------------------------------------------------------------------------------
if command -v rustup >/dev/null 2>&1 &&
    ! (cd "$here" && rustup target list --installed | grep -qx "$target_triple"); then
    (cd "$here" && rustup target add "$target_triple")
fi

# Builds the program with the given cargo features (may be empty) and prints the path of a
# copy of its ELF named after the variant. All variants share one target dir (the
# dependencies are built once); the copy keeps each variant's ELF apart.
build() {
    local variant=$1 features=$2
    local target_dir=$here/target/build
    local args=(build --release --manifest-path "$here/Cargo.toml" --target-dir "$target_dir")
    if [ -n "$features" ]; then
        args+=(--features "$features")
    fi
    (cd "$here" && cargo "${args[@]}") >&2
    cp "$target_dir/$target_triple/release/$bin_name" "$here/target/$variant.elf"
    echo "$here/target/$variant.elf"
}

# --- run ------------------------------------------------------------------------------------
passed_count=0
failed_count=0

# run_case NAME ELF THREADING EXPECTED_STATUS EXPECTED_LINE [STDERR_FILE]
# Runs the ELF once and checks the exit status and that a line contains EXPECTED_LINE. QEMU's
# stderr goes to the log too, or to STDERR_FILE if given (the defmt frames).
run_case() {
    local name=$1 elf=$2 threading=$3 expected_status=$4 expected_line=$5
    local stderr_file=${6:-}
    local log=$here/target/$name-$threading.log
    local status start_s
    echo
    echo "=== $name, -accel tcg,thread=$threading (expect exit $expected_status and '$expected_line')"
    start_s=$SECONDS
    set +e
    if [ -n "$stderr_file" ]; then
        timeout "$qemu_timeout_s" "$qemu" -M mps2-an521 -nographic \
            -semihosting-config enable=on,target=native \
            -accel "tcg,thread=$threading" \
            -kernel "$elf" </dev/null >"$log" 2>"$stderr_file"
    else
        timeout "$qemu_timeout_s" "$qemu" -M mps2-an521 -nographic \
            -semihosting-config enable=on,target=native \
            -accel "tcg,thread=$threading" \
            -kernel "$elf" </dev/null >"$log" 2>&1
    fi
    status=$?
    set -e
    sed 's/^/    /' "$log"
    if [ "$status" -eq "$expected_status" ] && grep -qF -- "$expected_line" "$log"; then
        echo "ok: $name/$threading: exit $status in $((SECONDS - start_s)) s"
        passed_count=$((passed_count + 1))
    else
        if [ "$status" -eq 124 ]; then
            echo "not ok: $name/$threading: QEMU killed after ${qemu_timeout_s} s (the program's own deadline did not fire)"
        else
            echo "not ok: $name/$threading: exit $status (expected $expected_status), expected line present: $(grep -qF -- "$expected_line" "$log" && echo yes || echo no)"
        fi
        failed_count=$((failed_count + 1))
    fi
}

# check_defmt NAME ELF FRAMES_FILE
# The defmt build must have sent frames to semihosting stderr; with `defmt-print` on PATH they
# are decoded and must contain the driver's log records.
check_defmt() {
    local name=$1 elf=$2 frames=$3
    local frames_size decoded
    frames_size=$(wc -c <"$frames")
    if [ "$frames_size" -eq 0 ]; then
        echo "not ok: $name: no defmt frames on semihosting stderr"
        failed_count=$((failed_count + 1))
        return
    fi
    if ! command -v defmt-print >/dev/null 2>&1; then
        echo "ok: $name: $frames_size bytes of defmt frames in $frames" \
            "(defmt-print is not installed: not decoded)"
        passed_count=$((passed_count + 1))
        return
    fi
    decoded=$(defmt-print -e "$elf" <"$frames" 2>&1 || true)
    printf '%s\n' "$decoded" | sed 's/^/    /'
    if printf '%s\n' "$decoded" | grep -qF "driver: prompt call: Replied"; then
        echo "ok: $name: $frames_size bytes of defmt frames, decoded"
        passed_count=$((passed_count + 1))
    else
        echo "not ok: $name: the decoded defmt frames lack the driver's records"
        failed_count=$((failed_count + 1))
    fi
}

mkdir -p "$here/target"
if [ "$mode" = positive ]; then
    elf=$(build default "")
    for threading in "${threadings[@]}"; do
        run_case default "$elf" "$threading" 0 "PASS"
    done
    # The same program with Tina's log records as defmt frames (semihosting stderr). One
    # single-threaded run: it shows the logging path, the two runs above show the cores.
    elf=$(build defmt defmt)
    frames=$here/target/defmt-single.defmt
    run_case defmt "$elf" single 0 "PASS" "$frames"
    check_defmt defmt "$elf" "$frames"
else
    # Core 1 never leaves CPUWAIT: core 0's bounded wait for it must end the run with exit 1.
    elf=$(build never-release-core1 never-release-core1)
    for threading in "${threadings[@]}"; do
        run_case never-release-core1 "$elf" "$threading" 1 "waiting for core 1 to start"
    done
    # PRIMASK-only critical section: the shared counter must come out short. Each core keeps
    # incrementing for at least a second, so even single-threaded TCG (which switches vCPUs
    # every 100 ms) interleaves the cores many times inside the race window.
    elf=$(build broken-critical-section broken-critical-section)
    for threading in "${threadings[@]}"; do
        run_case broken-critical-section "$elf" "$threading" 1 \
            "the critical section does not exclude the other core"
    done
fi

echo
echo "qemu-an521: $passed_count passed, $failed_count failed"
[ "$failed_count" -eq 0 ]
