// Command pipeline runs the design's pipeline — feed handler → trading
// engine → risk manager, with monitoring beside them — as three processes
// built only on mdjournal's public packages (the stages are package
// pipeline; this command adds flags and process wiring). Copy it as a
// template.
//
//	pipeline feed   -dir D [-lobster DIR | -synth N -seed S] [-pace 1 | -rate N] [-duration 10s] [-cpu N]
//	pipeline engine -dir D -ring /dev/shm/NAME.ring [-join snapshot|start] [-wait futex] [-cpu N]
//	pipeline risk   -dir D -ring /dev/shm/NAME.ring [-wait futex] [-trigger-wait 2s] [-cpu N]
//	pipeline run    [-dir D] [-lobster DIR | -synth N] [-pace 1 -duration 10s] [-wait W] [-cpus F,E,R]
//
// -cpu pins a stage's loop (the goroutine that runs it, locked to its
// thread) to one CPU; run's -cpus gives the feed's, engine's and risk's, -1
// for a stage left free. Pin spinning stages to CPUs of their own: two
// spinners on one CPU take turns by scheduler quanta (milliseconds).
//
// The stages may start in any order: the engine waits (-start-timeout,
// default 30 s) for the market-data journal and the snapshot, risk for the
// journal and the ring; past it they exit with status 3 and say what is
// missing. Each stage can be killed (even with SIGKILL) and restarted with
// the same arguments at any time: the journals say where it was (see
// package pipeline, "Restarts"). The engine's -join applies to its first
// start only: "snapshot" is a late joiner (books from md.snap, then the
// journal after it, deciding only after the join point recorded in
// D/engine.join); "start" replays the journal from its first frame.
//
// run starts the three stages as child processes (risk, engine with
// -join start, then feed), waits for them, and prints the per-hop latency
// table from their stats files. Meanwhile
//
//	journalctl top --stats D/stats
//
// shows every stage live, and journalctl serve --metrics ADDR --dir D/md
// exports the journals and, with --stats, the stage counters.
//
// Exit status: 0 done, 1 error, 2 usage, 3 input not there in time.
package main
