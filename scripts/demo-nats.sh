#!/usr/bin/env bash
# demo-nats: ship a live journal through NATS JetStream into a replica and
# tail it there. Needs bin/journalctl and bin/nats-server (make demo-nats).
set -euo pipefail
BIN=${BIN:-bin}
D=${DEMO_DIR:-demo/nats}
PORT=${NATS_PORT:-14222}
URL=nats://127.0.0.1:$PORT
rm -rf "$D" && mkdir -p "$D"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
echo "== nats-server with JetStream on 127.0.0.1:$PORT"
"$BIN/nats-server" -js -a 127.0.0.1 -p "$PORT" -sd "$D/nats" >"$D/nats.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
"$BIN/journalctl" create --dir "$D/origin" >/dev/null
echo "== journalctl ship: origin → stream MD;  journalctl mirror: stream MD → replica (+ order-book snapshot)"
"$BIN/journalctl" ship --dir "$D/origin" --nats "$URL" --stream MD >"$D/ship.out" 2>"$D/ship.log" & pids+=($!)
"$BIN/journalctl" mirror --dir "$D/replica" --nats "$URL" --stream MD --snapshot "$D/replica.snap" >"$D/mirror.out" 2>"$D/mirror.log" & pids+=($!)
echo "== the origin is written while both run: 200000 frames"
"$BIN/journalctl" gen --dir "$D/origin" --count 200000 --instruments 4 --clock synthetic
until "$BIN/journalctl" stat --dir "$D/replica" >/dev/null 2>&1; do sleep 0.1; done  # the mirror made the replica
echo "== then 10 frames a second; a reader on the replica host tails them as they arrive"
"$BIN/journalctl" gen --dir "$D/origin" --count 20 --instruments 4 --rate 10 >/dev/null & gen=$!
"$BIN/journalctl" tail --dir "$D/replica" --from seq:200001 --count 20 --wait futex 2>"$D/tail.err" || true
wait "$gen"
"$BIN/journalctl" tail --dir "$D/replica" --from seq:200020 --count 1 >/dev/null 2>&1 || true  # the replica has the last frame
echo "== origin and replica dump byte for byte the same"
cmp <("$BIN/journalctl" dump --dir "$D/origin") <("$BIN/journalctl" dump --dir "$D/replica") &&
  echo "identical: $("$BIN/journalctl" dump --dir "$D/replica" | wc -l) frames"
"$BIN/journalctl" verify --dir "$D/replica"
"$BIN/journalctl" snapshot --file "$D/replica.snap" 2>/dev/null | head -8 || true
