// Package prefetch issues a cache prefetch for a line the caller will write
// soon. The journal writer publishes each frame with a sequentially
// consistent store (an XCHG on amd64), which waits until every earlier store
// has left the store buffer; if the frame's cache lines are not in cache that
// wait is a DRAM round trip per publish. Prefetching the lines a little ahead
// of the cursor takes that miss off the critical path.
package prefetch
