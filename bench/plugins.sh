#!/usr/bin/env bash
# Throughput of WaspMQ with plugins, side by side: the fan-in QoS 0 scenario of compare.sh
# (10 publishers -> 1 subscriber, 64 B, end-to-end window 500) run three ways, alternating,
# ROUNDS times:
#   none     no plugins;
#   taboo    the shipped topic-taboo with the shipped broker.toml's taboo list (it declares
#            that list as its authorize-publish-filters, so the benchmark's topic is never
#            handed to the plugin);
#   rewrite  plugins/testing/rewrite on every PUBLISH (filter `#`; it returns a rewrite with
#            the same topic and payload, so the subscriber still gets the stamped messages,
#            but the broker pays the full call: arguments in, new topic and payload out).
# Each run goes through compare.sh (same pinning: broker on BROKER_CPU, generator on GEN_CPU,
# a fresh broker per run) and the table gives every run, the median and the median's ratio to
# `none`.
#
# Environment knobs: ROUNDS (default 3), DURATION (default 10), VARIANTS (default
# "none taboo rewrite"), WASP_PORT, BROKER_CPU / GEN_CPU, MQTT, OUT (keep raw logs),
# SKIP_BUILD=1 (no cargo build; the plugins must already be built).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ROUNDS=${ROUNDS:-3}
VARIANTS=${VARIANTS:-"none taboo rewrite"}
export WASP_PORT=${WASP_PORT:-18831}
export DURATION=${DURATION:-10}
PLUGIN_DIR=$CARGO_TARGET_DIR/wasm32-wasip2/release

if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT" && WORK=$(cd "$OUT" && pwd)
else
    WORK=$(mktemp -d /tmp/waspmq-plugins.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
fi
say() { printf '%s\n' "$*" >&2; }

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    say "== building the plugins, waspmq and waspmq-bench (release)"
    (cd "$ROOT" && scripts/build-plugins.sh &&
        cargo build --release -p waspmq -p waspmq-bench) || { say "!! build failed"; exit 2; }
fi
for p in topic_taboo rewrite; do
    [[ -f $PLUGIN_DIR/$p.wasm ]] || { say "!! $PLUGIN_DIR/$p.wasm missing: run scripts/build-plugins.sh"; exit 2; }
done

# The shipped taboo list, exactly as broker.toml has it.
TABOO_TOPICS=$(sed -n '/^name = "topic-taboo"/,/^topics *=/p' "$ROOT/broker.toml" | grep '^topics *=')
[[ -n $TABOO_TOPICS ]] || { say "!! no topic-taboo topics in broker.toml"; exit 2; }

# Same settings as compare.sh's generated WaspMQ config, plus the variant's plugins.
config() { # variant
    cat <<EOF
sys_interval = 0

[listeners.default]
type = "tcp"
bind = "127.0.0.1:$WASP_PORT"

[log]
level = "warn"
file = false

[limits]
max_inflight = 20
receive_maximum = 20
max_queued_messages = ${WASP_QUEUE:-1000}

[persistence]
enabled = false
EOF
    case $1 in
    none) ;;
    taboo) printf '\n[[plugins]]\nname = "topic-taboo"\npath = "%s"\nrequired = true\n[plugins.config]\n%s\n' \
        "$PLUGIN_DIR/topic_taboo.wasm" "$TABOO_TOPICS" ;;
    rewrite) printf '\n[[plugins]]\nname = "rewrite"\npath = "%s"\nrequired = true\n[plugins.config]\nprefix = ""\nuppercase = false\n' \
        "$PLUGIN_DIR/rewrite.wasm" ;;
    *) return 1 ;;
    esac
}

declare -A RATES=() CPUS=()
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
    for v in $VARIANTS; do
        config "$v" >"$WORK/$v.toml" || { say "!! unknown variant $v"; continue; }
        out=$WORK/$v.$round
        say "-- round $round: $v"
        SKIP_BUILD=1 BROKERS=waspmq SCENARIOS=fanin-q0 WASPMQ_CONFIG="$WORK/$v.toml" OUT="$out" \
            "$ROOT/bench/compare.sh" >"$out.table" 2>"$out.log"
        line=$(tail -n 1 "$out/results.txt" 2>/dev/null)
        rate=$(tr ' ' '\n' <<<"$line" | sed -n 's/^rate=//p' | head -n 1)
        cpu=$(tr ' ' '\n' <<<"$line" | sed -n 's/^broker_cpu=//p' | head -n 1)
        status=$(tr ' ' '\n' <<<"$line" | sed -n 's/^status=//p' | head -n 1)
        if [[ -z $rate || $status != ok ]]; then
            say "!! $v round $round: no good result (status ${status:-none}; see $out.log)"
            rate=error
        fi
        say "   $v: ${rate} msgs/s, broker cpu ${cpu:-?}%"
        RATES[$v]="${RATES[$v]:-} $rate"
        CPUS[$v]="${CPUS[$v]:-} ${cpu:--}"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -n | awk '{a[NR]=$1} END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.0f", (a[NR/2]+a[NR/2+1])/2 }'; }
NONE_MEDIAN=$(median <<<"${RATES[none]:-}")

echo
echo "WaspMQ fan-in QoS 0 (10 -> 1, 64 B, e2e window 500, MQTT ${MQTT:-3}), ${DURATION} s per run, $ROUNDS rounds alternating; broker on CPU ${BROKER_CPU:-0}, generator on CPU ${GEN_CPU:-1}"
echo "load average before: $LOAD_BEFORE, after: $LOAD_AFTER ($(nproc) cores)"
printf '%-8s %-34s %10s %12s %12s\n' plugins "msgs/s per run" median "vs none" "broker cpu%"
for v in $VARIANTS; do
    m=$(median <<<"${RATES[$v]:-}")
    ratio=$(awk -v a="$m" -v b="$NONE_MEDIAN" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.3f", a / b; else print "-" }')
    printf '%-8s %-34s %10s %12s %12s\n' "$v" "${RATES[$v]# }" "$m" "$ratio" "${CPUS[$v]# }"
done
[[ -n "${OUT:-}" ]] && echo "raw logs: $WORK"
exit 0
