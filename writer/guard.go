package writer

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"

	"github.com/mdjournal/mdjournal/internal/words"
	"github.com/mdjournal/mdjournal/journal"
)

// The control page is the one shared file the writer maps that readers may
// write. When other users can write it they can also truncate it, and a
// store or load beyond a file's end is a SIGBUS: then every access goes
// through guard, which turns such a fault into a writer failure (format.md
// §6). When only the writer's own user can write it, nothing is guarded
// (that user can stop the writer in other ways anyway) and the wake check
// costs one load.

// guard runs fn with faults on mapped memory turned into a panic, and the
// panic into an error.
func guard(fn func()) (err error) {
	defer func(old bool) {
		debug.SetPanicOnFault(old)
		if e := recover(); e != nil {
			if re, ok := e.(runtime.Error); ok {
				err = fmt.Errorf("%w: the control page was truncated under the writer (%v)", journal.ErrTruncated, re)
				return
			}
			panic(e)
		}
	}(debug.SetPanicOnFault(true))
	fn()
	return nil
}

func (w *Writer) guardedWake() error {
	if err := guard(w.sig.Wake); err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *Writer) setActiveSegment(n uint64) error {
	if !w.ctlGuarded {
		atomic.StoreUint64(words.U64(w.ctlM, journal.CtlOffActive), n)
		return nil
	}
	if err := guard(func() { atomic.StoreUint64(words.U64(w.ctlM, journal.CtlOffActive), n) }); err != nil {
		return w.fail(err)
	}
	return nil
}

// ctlGuardOK reports whether the control page can be touched (it is not
// guarded, or a guarded probe of it works).
func (w *Writer) ctlGuardOK() bool {
	return !w.ctlGuarded || guard(func() { _ = atomic.LoadUint32(words.U32(w.ctlM, journal.CtlOffWriterPID)) }) == nil
}

func statUID(fi os.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}
