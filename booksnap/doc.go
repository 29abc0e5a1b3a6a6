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
// Wiring, without any change to package writer:
//
//	opts, m, err := booksnap.WriterOptions(writer.Options{}, booksnap.Config{Path: snapPath, Depth: 10})
//	w, err := writer.Open(dir, opts)
//	err = m.Start(w) // open the snapshot, catch up with what the journal already holds
//	... w.Append(...) ...
//	w.Close(); m.Close()
//
// or simply booksnap.OpenWriter(dir, opts, cfg), which does the three steps.
//
// # Restart and catch-up
//
// The snapshot holds only the top Depth levels of each book, so it cannot be
// the starting point of a maintainer that restarts: the levels behind the
// view come into view later and must be known. Start therefore always
// rebuilds the full-depth books by reading the journal from its first frame
// up to the writer's LastSeq (CatchUp; about a second for a full LOBSTER
// day), then republishes every slot and advances the last-applied seq to
// LastSeq. Readers of the snapshot meanwhile see its previous, consistent
// content. If the file mirrors another journal, has another depth or
// capacity, or claims a seq the journal does not have (the observer runs when
// a frame is staged, before it is durable, so a crash can leave the snapshot
// ahead of the recovered journal), it is deleted and created afresh, because
// the snapshot format has no way to move last-applied backwards.
//
// # Late joiners
//
// A late joiner reads the slot of its instrument (seq S), seeds a book from
// it and tails the journal from seq S+1, applying that instrument's frames:
// see Load and Join. The seeded book is the exact book only if it had fewer
// than Depth levels on each side when the slot was read (Loaded.Complete);
// otherwise its top Depth levels are exact and deeper ones unknown, which
// matters when a top level empties and the feed does not say what enters the
// view (the LOBSTER importer does, with BookLevel frames).
//
// # Which frames move a slot
//
// A slot's seq is the seq of the last frame that carried book information
// for its instrument (instrument_def, trade, quote, book_level, order_*) and
// that the book accepted. journalctl book reports the same seq, so the two
// agree at any point.
package booksnap
