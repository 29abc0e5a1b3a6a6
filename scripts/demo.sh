#!/usr/bin/env bash
# make demo: the main job end to end on built-in data (testdata/lobster, a
# 20000-row excerpt of NASDAQ AMZN 2012-06-21 from LOBSTER):
#   1. a reader process tails the journal live (futex wait) while
#   2. a writer process imports the LOBSTER messages, keeping the order-book snapshot;
#   3. the snapshot and a point-in-time book are printed;
#   4. sealed segments are compressed (seekable zstd);
#   5. the journal is replayed from the archives into a shared-memory ring,
#      consumed by another process, and compared byte for byte with dump;
#   6. verify and inspect;
#   7. the day is published as ITCH 5.0 / MoldUDP64 on 127.0.0.1 with losses,
#      received by the feed handler (gaps re-requested) and compared.
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

step "7. from the wire: publish the day as ITCH 5.0 in MoldUDP64 on 127.0.0.1 with 1% of packets dropped; the feed handler re-requests them and writes a new journal"
W=$OUT/wire
PORT=$((20000 + RANDOM % 20000))
$BIN/journalctl feed --dir "$W" --listen "udp://127.0.0.1:$PORT" --rerequest "udp://127.0.0.1:$((PORT + 1))" --date 2012-06-21 \
  > "$OUT/feed.txt" 2> "$OUT/feed.err" &
FEEDPID=$!
for _ in $(seq 100); do grep -q "listening on" "$OUT/feed.err" 2>/dev/null && break; sleep 0.05; done
$BIN/journalctl publish --from "$J" --to "udp://127.0.0.1:$PORT" --rerequest-listen "udp://127.0.0.1:$((PORT + 1))" \
  --drop 0.01 --linger 2s > "$OUT/publish.txt" 2> "$OUT/publish.err"
wait "$FEEDPID"
echo "publish: $(cat "$OUT/publish.txt")"
echo "feed:    $(cat "$OUT/feed.txt")"
$BIN/journalctl tail --dir "$W" --from seq:100 --count 3 --format text
# the ladders (not the header line: the two journals number their frames
# differently, since the source re-states definitions at each of its many
# small segments)
if [ "$($BIN/journalctl book --dir "$J" --instrument AMZN --depth 0 | tail -n +2)" = "$($BIN/journalctl book --dir "$W" --instrument AMZN --depth 0 | tail -n +2)" ]; then
  echo "the received journal's AMZN book equals the source's at the end of the day (every level)"
else
  echo "MISMATCH between the source and the received book"; exit 1
fi

echo; echo "demo files are in $OUT/"
