#!/usr/bin/env bash
# Runs the issue-5 benchmark scenarios against Mosquitto and WaspMQ, alternately, on this
# machine, and prints a table with both figures and the ratio WaspMQ/Mosquitto.
#
# The broker is pinned to one CPU (BROKER_CPU, default 0) and waspmq-bench to another
# (GEN_CPU, default 1); each scenario gets a freshly started broker.
#
# Environment knobs (all optional):
#   WASPMQ_BIN      broker binary              (default: $CARGO_TARGET_DIR/release/waspmq)
#   WASPMQ_ARGS     its arguments              (default: --config <generated waspmq.toml>)
#   WASPMQ_CONFIG   use this config file instead of the generated one (must bind WASP_PORT)
#   MOSQ_PORT / WASP_PORT   listener ports      (default 18830 / 18831)
#   BROKERS         which brokers to run        (default "mosquitto waspmq")
#   SCENARIOS       subset, in order            (default "fanin-q0 fanin-q1 fanin-q2 fanout-q0 pairs-q1 conn")
#   DURATION        seconds per flow scenario   (default 10)
#   MQTT            3 (3.1.1) or 5              (default 3)
#   CONN_COUNT / CONN_RATE   conn scenario      (default 10000 / 2000)
#   PAIRS / PAIR_RATE        pairs scenario     (default 500 / 10)
#   E2E=0           QoS 0 scenarios at raw full speed. By default they use an end-to-end
#                   window (FANIN_E2E=500 / FANOUT_E2E=50 messages per publisher not yet
#                   delivered to all subscribers): QoS 0 has no ack to pace the publisher,
#                   so without it the broker just queues and latency measures queue depth.
#   WASP_QUEUE      WaspMQ limits.max_queued_messages (default 1000, its default): WaspMQ holds
#                   publishers back when a live subscriber's queue is full (flow control), so a
#                   small queue loses nothing and bounds latency. Mosquitto drops at a full
#                   queue, so it gets max_queued_messages 1000000 to lose nothing.
#   OUT             keep raw logs (broker + generator output, RESULT lines) in this folder
#   SKIP_BUILD=1    do not run cargo build
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH_BIN=$CARGO_TARGET_DIR/release/waspmq-bench
MOSQ_PORT=${MOSQ_PORT:-18830}
WASP_PORT=${WASP_PORT:-18831}
BROKER_CPU=${BROKER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
BROKERS=${BROKERS:-"mosquitto waspmq"}
SCENARIOS=${SCENARIOS:-"fanin-q0 fanin-q1 fanin-q2 fanout-q0 pairs-q1 conn"}
DURATION=${DURATION:-10}
MQTT=${MQTT:-3}
CONN_COUNT=${CONN_COUNT:-10000}
CONN_RATE=${CONN_RATE:-2000}
PAIRS=${PAIRS:-500}
PAIR_RATE=${PAIR_RATE:-10}
E2E=${E2E:-1}
WASP_QUEUE=${WASP_QUEUE:-1000}
FANIN_E2E=${FANIN_E2E:-500}
FANOUT_E2E=${FANOUT_E2E:-50}
if [[ $E2E == 1 ]]; then
    FANIN_Q0_EXTRA="--e2e-window $FANIN_E2E"
    FANOUT_Q0_EXTRA="--e2e-window $FANOUT_E2E"
else
    FANIN_Q0_EXTRA=""
    FANOUT_Q0_EXTRA=""
fi

if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT" && WORK=$(cd "$OUT" && pwd)
else
    WORK=$(mktemp -d /tmp/waspmq-compare.XXXXXX)
fi

say() { printf '%s\n' "$*" >&2; }

# --- prerequisites ------------------------------------------------------------------------
if ! command -v mosquitto >/dev/null 2>&1 && [[ " $BROKERS " == *" mosquitto "* ]]; then
    say "== installing mosquitto from Debian"
    if ! { apt-get install -y mosquitto >"$WORK/apt.log" 2>&1 ||
        { apt-get update >>"$WORK/apt.log" 2>&1 && apt-get install -y mosquitto >>"$WORK/apt.log" 2>&1; }; }; then
        say "!! could not install mosquitto (see $WORK/apt.log)"
    fi
fi
# mosquitto's package may start a system instance on 1883; ours use their own ports.

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    say "== building waspmq-bench (release)"
    (cd "$ROOT" && cargo build --release -p waspmq-bench) || { say "!! waspmq-bench failed to build"; exit 2; }
    if [[ -z "${WASPMQ_BIN:-}" && " $BROKERS " == *" waspmq "* ]]; then
        say "== building waspmq (release)"
        (cd "$ROOT" && cargo build --release -p waspmq) || say "!! waspmq failed to build; it will be skipped"
    fi
fi
WASPMQ_BIN=${WASPMQ_BIN:-$CARGO_TARGET_DIR/release/waspmq}

# Both brokers share the generator's descriptor budget; raise the soft limit for both.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- broker configs: same limits on both sides ---------------------------------------------
# 20 unacknowledged QoS 1/2 messages per client in each direction (Mosquitto's default and
# the generator's window); no persistence, no $SYS, quiet logs. Mosquitto gets a deep
# per-client queue so that a slow subscriber is measured as latency rather than as dropped
# messages; WaspMQ keeps its default queue (WASP_QUEUE) because it pushes back on publishers
# instead of dropping.
cat >"$WORK/mosquitto.conf" <<EOF
listener $MOSQ_PORT 127.0.0.1
allow_anonymous true
max_inflight_messages 20
max_queued_messages 1000000
max_connections -1
persistence false
sys_interval 0
log_dest stderr
log_type error
log_type warning
EOF
if [[ -z "${WASPMQ_CONFIG:-}" ]]; then
    WASPMQ_CONFIG=$WORK/waspmq.toml
    cat >"$WASPMQ_CONFIG" <<EOF
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
max_queued_messages = $WASP_QUEUE

[persistence]
enabled = false
EOF
fi
WASPMQ_ARGS=${WASPMQ_ARGS:-"--config $WASPMQ_CONFIG"}

# --- broker lifecycle ---------------------------------------------------------------------
BROKER_PID=
declare -A BROKER_BROKEN=()

port_of() { [[ $1 == mosquitto ]] && echo "$MOSQ_PORT" || echo "$WASP_PORT"; }

start_broker() { # name logfile
    local name=$1 log=$2 port
    port=$(port_of "$name")
    case $name in
    mosquitto) taskset -c "$BROKER_CPU" mosquitto -c "$WORK/mosquitto.conf" >"$log" 2>&1 & ;;
    # shellcheck disable=SC2086 # WASPMQ_ARGS is a word list on purpose
    waspmq) taskset -c "$BROKER_CPU" "$WASPMQ_BIN" $WASPMQ_ARGS >"$log" 2>&1 & ;;
    esac
    BROKER_PID=$!
    for _ in $(seq 50); do
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            break
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            sleep 0.2
            return 0
        fi
        sleep 0.1
    done
    stop_broker
    return 1
}

stop_broker() {
    [[ -n "$BROKER_PID" ]] || return 0
    kill -TERM "$BROKER_PID" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$BROKER_PID" 2>/dev/null
    wait "$BROKER_PID" 2>/dev/null
    BROKER_PID=
}
cleanup() {
    stop_broker
    [[ -z "${OUT:-}" ]] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- scenarios ----------------------------------------------------------------------------
bench_args() { # scenario
    case $1 in
    fanin-q0) echo "fanin --pubs 10 --subs 1 --qos 0 --payload 64 --duration $DURATION $FANIN_Q0_EXTRA" ;;
    fanin-q1) echo "fanin --pubs 10 --subs 1 --qos 1 --window 20 --payload 64 --duration $DURATION" ;;
    fanin-q2) echo "fanin --pubs 10 --subs 1 --qos 2 --window 20 --payload 64 --duration $DURATION" ;;
    fanout-q0) echo "fanout --subs 100 --qos 0 --payload 64 --duration $DURATION $FANOUT_Q0_EXTRA" ;;
    pairs-q1) echo "pairs --pairs $PAIRS --rate $PAIR_RATE --qos 1 --payload 64 --duration $DURATION" ;;
    conn) echo "conn --count $CONN_COUNT --rate $CONN_RATE --hold 2" ;;
    *) return 1 ;;
    esac
}

declare -A RESULT=()
CORES=$(nproc)
say "== broker on CPU $BROKER_CPU, waspmq-bench on CPU $GEN_CPU: broker and generator share this machine's $CORES cores"
say "== queues: mosquitto max_queued_messages 1000000, waspmq max_queued_messages $WASP_QUEUE (flow control)"
say "== MQTT $([[ $MQTT == 5 ]] && echo 5.0 || echo 3.1.1), $DURATION s per flow scenario, QoS 0 end-to-end window $([[ $E2E == 1 ]] && echo "on ($FANIN_E2E fanin / $FANOUT_E2E fanout)" || echo off), logs in $WORK"

for sc in $SCENARIOS; do
    args=$(bench_args "$sc") || { say "!! unknown scenario $sc"; continue; }
    for b in $BROKERS; do
        if [[ -n "${BROKER_BROKEN[$b]:-}" ]]; then
            RESULT[$sc|$b]="skipped"
            continue
        fi
        blog=$WORK/$sc.$b.broker.log
        glog=$WORK/$sc.$b.bench.log
        if ! start_broker "$b" "$blog"; then
            say "!! $b did not start (it exited, or did not listen on port $(port_of "$b") within 5 s): skipping it for the rest of this run"
            say "   last lines of $blog:"
            tail -n 5 "$blog" 2>/dev/null | sed 's/^/     /' >&2
            BROKER_BROKEN[$b]=1
            RESULT[$sc|$b]="skipped"
            continue
        fi
        say "-- $sc on $b"
        # shellcheck disable=SC2086 # args is a word list on purpose
        taskset -c "$GEN_CPU" "$BENCH_BIN" $args --mqtt "$MQTT" --port "$(port_of "$b")" \
            --broker-pid "$BROKER_PID" --label "$b" >"$glog" 2>&1
        rc=$?
        stop_broker
        sed 's/^/   /' "$glog" | grep -v '^   RESULT' >&2
        line=$(grep '^RESULT' "$glog" | tail -n 1)
        if [[ -z "$line" ]]; then
            line="RESULT scenario=$sc broker=$b status=error"
            say "!! generator exited with $rc and no result (see $glog)"
        fi
        RESULT[$sc|$b]=$line
        [[ -n "${OUT:-}" ]] && echo "$line" >>"$WORK/results.txt"
    done
done

# --- table --------------------------------------------------------------------------------
field() { # result-line key
    local v
    v=$(tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n 1)
    echo "${v:--}"
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else print "-" }'
}

echo
echo "WaspMQ vs Mosquitto $(mosquitto -h 2>/dev/null | head -n 1 | awk '{print $3}') — MQTT $([[ $MQTT == 5 ]] && echo 5.0 || echo 3.1.1), broker pinned to CPU $BROKER_CPU, generator to CPU $GEN_CPU"
echo "NOTE: broker and generator share this machine's $CORES cores; figures are relative, not absolute capacity."
printf '%-10s %-16s %14s %14s %10s\n' scenario metric mosquitto waspmq ratio
for sc in $SCENARIOS; do
    m=${RESULT[$sc|mosquitto]:-skipped}
    w=${RESULT[$sc|waspmq]:-skipped}
    if [[ $sc == conn ]]; then
        metrics="bytes_per_conn conn_rate p50_ms p99_ms failed broker_cpu status"
    else
        metrics="rate p50_ms p99_ms p999_ms loss dup reorder broker_cpu gen_cpu status"
    fi
    first=$sc
    for k in $metrics; do
        mv=$(field "$m" "$k")
        wv=$(field "$w" "$k")
        [[ $m == skipped ]] && mv=skipped
        [[ $w == skipped ]] && wv=skipped
        label=$k
        case $k in rate) label="msgs/s" ;; bytes_per_conn) label="bytes/conn" ;; conn_rate) label="conn/s" ;;
        broker_cpu) label="broker cpu%" ;; gen_cpu) label="generator cpu%" ;; esac
        r=-
        [[ $k != status ]] && r=$(ratio "$wv" "$mv")
        printf '%-10s %-16s %14s %14s %10s\n' "$first" "$label" "$mv" "$wv" "$r"
        first=
    done
done
echo "ratio = WaspMQ / Mosquitto: above 1 is better for msgs/s and conn/s, below 1 is better for latency and bytes/conn."
[[ -n "${OUT:-}" ]] && echo "raw logs: $WORK"
exit 0
