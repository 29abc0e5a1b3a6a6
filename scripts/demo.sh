#!/usr/bin/env bash
# make demo: the main job end to end on built-in data (testdata/lobster, a
# 20000-row excerpt of NASDAQ AMZN 2012-06-21 from LOBSTER):
#   1. a reader process tails the journal live (futex wait) while
#   2. a writer process imports the LOBSTER messages, keeping the order-book snapshot;
#   3. the snapshot and a point-in-time book are printed;
#   4. sealed segments are compressed (seekable zstd);
#   5. the journal is replayed from the archives into a shared-memory ring,
#      consumed by another process, and compared byte for byte with dump;
#   6. verify and inspect.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=bin
OUT=demo
J=$OUT/journal
SNAP=$OUT/books.snap
RING=mdjournal-demo-$$
MSG=testdata/lobster/AMZN_2012-06-21_34200000_57600000_message_5.csv.gz
OB=testdata/lobster/AMZN_2012-06-21_34200000_57600000_orderbook_5.csv.gz

cleanup() { rm -f "/dev/shm/$RING"; [ -n "${TAILPID:-}" ] && kill "$TAILPID" 2>/dev/null || true; }
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$OUT"; mkdir -p "$OUT"

step "1. create an empty journal (256 KiB segments so the day spans several) and tail it live from another process"
$BIN/journalctl create --dir "$J" --segment-size 256KiB
$BIN/journalctl tail --dir "$J" --from start --wait futex --format text > "$OUT/tail.txt" &
TAILPID=$!
sleep 0.2

step "2. import LOBSTER AMZN (writer process; the order-book snapshot is kept as frames are appended)"
$BIN/journalctl import --dir "$J" --format lobster --symbol AMZN --date 2012-06-21 --segment-size 256KiB \
  --snapshot "$SNAP" --depth 5 "$MSG" --orderbook "$OB"
LAST=$($BIN/journalctl verify --dir "$J" --json | sed -n 's/.*"last_seq": \([0-9]*\).*/\1/p')
for _ in $(seq 50); do [ "$(wc -l < "$OUT/tail.txt")" -ge "$LAST" ] && break; sleep 0.1; done
kill -INT "$TAILPID"; wait "$TAILPID" || true; TAILPID=
echo "live tail process saw $(wc -l < "$OUT/tail.txt") of $LAST frames while they were written; its first and last lines:"
head -n 3 "$OUT/tail.txt"; echo "  ..."; tail -n 2 "$OUT/tail.txt"

step "3. the live snapshot (zero-copy seqlock read) and the book at 09:45 New York time"
$BIN/journalctl snapshot --file "$SNAP" --instrument AMZN
$BIN/journalctl book --dir "$J" --instrument AMZN --at time:2012-06-21T13:45:00Z --depth 5

step "4. compress the sealed segments (seekable zstd archives)"
$BIN/journalctl compress --dir "$J" | tail -n 1

step "5. replay the archived day into a shared-memory ring; another process consumes it"
$BIN/journalctl dump --dir "$J" --format csv > "$OUT/dump.csv"
# replay creates the ring (256 KiB, smaller than the day: it waits for the consumer), then
# another process attaches as the consumer and prints what arrives
$BIN/replay --dir "$J" --ring "$RING" --ring-size 256KiB --speed max > "$OUT/replay.txt" &
REPLAYPID=$!
for _ in $(seq 50); do [ -e "/dev/shm/$RING" ] && break; sleep 0.05; done
$BIN/journalctl ring --name "$RING" --format csv > "$OUT/ring.csv"
wait "$REPLAYPID"
cat "$OUT/replay.txt"
if cmp -s "$OUT/dump.csv" "$OUT/ring.csv"; then
  echo "ring consumer output == journalctl dump ($(($(wc -l < "$OUT/ring.csv") - 1)) frames, byte for byte)"
else
  echo "MISMATCH between ring consumer output and dump"; diff "$OUT/dump.csv" "$OUT/ring.csv" | head; exit 1
fi

step "6. verify and inspect"
$BIN/journalctl verify --dir "$J"
$BIN/journalctl inspect --dir "$J" > "$OUT/inspect.txt"
head -n 30 "$OUT/inspect.txt"; echo "  ... (full report in $OUT/inspect.txt)"

echo; echo "demo files are in $OUT/"
