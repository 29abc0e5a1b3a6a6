// Package booksnap keeps an order-book snapshot file (package snapshot) up to
// date as a journal is written, and gives late joiners the book back.
//
// # Maintainer
//
// A Maintainer is a writer.Observer: the writer calls Observe on its
// appender goroutine for every frame it stages. The maintainer applies the
// frame to a full-depth book of its instrument (package book) and publishes
// that instrument's top Depth levels per side, its last trade and the frame's
// seq and timestamp into the instrument's slot of the snapshot file (one
// seqlocked store, no system call, no allocation). InstrumentDef frames also
// set the slot's symbol and price scale. Frames that carry no book
// information (heartbeats, raw) only advance the file's last-applied seq.
//
// It is also a writer.Admitter: before staging a frame the writer asks
// Admit, which refuses (*CapacityError) a book frame of an instrument id the
// file has no slot for (ids ≥ Config.Capacity). Such a frame is never
// written, so the journal never holds a book the snapshot does not mirror.
//
// Wiring, without any change to package writer:
//
//	opts, m, err := booksnap.WriterOptions(writer.Options{}, booksnap.Config{Path: snapPath, Depth: 10})
//	w, err := writer.Open(dir, opts)
//	err = m.Start(w) // open the snapshot, rebuild the books from the journal
//	... w.Append(...) ...
//	w.Close(); m.Close()
//
// or simply booksnap.OpenWriter(dir, opts, cfg), which does the three steps.
// The snapshot file is created mode 0640 (Config.Perm) and locked through its
// private PATH.lock (package snapshot); Close syncs it and marks it closed
// cleanly.
//
// # Restart and catch-up
//
// Start rebuilds the full-depth books from the journal, up to the writer's
// LastSeq, then republishes every slot and advances the last-applied seq;
// Rebuild reports what it did. Readers of the snapshot meanwhile see its
// previous content: the file is republished in place only if it fits (same
// journal, depth and capacity, intact, not ahead of the journal — the
// observer runs when a frame is staged, before it is durable, so a crash can
// leave the snapshot ahead of the recovered journal); otherwise a new file is
// built under a temporary name and renamed over it once complete. A failed
// Start leaves the file as it was, or creates none.
//
// Where the books come from:
//
//   - A journal that still holds seq 1 is replayed from it (FromJournal):
//     exact. About a second for a full LOBSTER day.
//   - A journal whose first segments were pruned (first retained frame F) no
//     longer says what the pruned frames put in the books: retained frames
//     alone are no book image (every segment re-states the instrument
//     definitions, format.md §3.4, not the books). The maintainer continues
//     from the snapshot file if it bridges the gap (FromSnapshot): same
//     journal, intact (closed cleanly, or its writer died since the system
//     booted), last_applied ≥ F−1, no slot past the journal's end. Each book
//     is seeded from its slot (seq S) and given the retained frames of its
//     instrument after S. A slot holding fewer than the file's Depth levels
//     on each side is the whole book, so the rebuild is exact; a full slot
//     is only the top, and the levels below are unknown.
//   - Otherwise, or if some seeded slot was full, Start refuses with a
//     *PrunedError (ErrPruned) saying what is missing and what would do:
//     the pruned segments restored, a snapshot of this journal closed at a
//     seq ≥ F−1 with a Depth above every book's depth, or
//     Config.AllowIncomplete. With AllowIncomplete the maintainer starts
//     anyway — from the full slots (FromSnapshot) or from the retained frames
//     alone (FromRetained) — and Rebuild().Incomplete names every book that
//     may lack levels.
//
// A feed handler that prunes its journal therefore keeps a snapshot whose
// Depth exceeds its books' (e.g. 64 for equities, or snapshot.MaxDepth), and
// closes the maintainer cleanly or lets it die without a power cut.
//
// # Late joiners
//
// A late joiner reads the slot of its instrument (seq S), seeds a book from
// it and tails the journal from seq S+1, applying that instrument's frames:
// see Load and Join. The seeded book is the exact book only if it had fewer
// than Depth levels on each side when the slot was read (Loaded.Complete);
// otherwise its top Depth levels are exact and deeper ones unknown, which
// matters when a top level empties and the feed does not say what enters the
// view (the LOBSTER importer does, with BookLevel frames). Join reads the
// journal with package reader, so compressed (.seg.zst) segments are read
// like raw ones; a slot whose next frame was pruned cannot be joined
// (reader.ErrOutOfRange).
//
// # Which frames move a slot
//
// A slot's seq is the seq of the last frame that carried book information
// for its instrument (instrument_def, trade, quote, book_level, order_*) and
// that the book accepted. journalctl book reports the same seq, so the two
// agree at any point.
package booksnap
