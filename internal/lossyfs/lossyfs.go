// Package lossyfs is a FUSE file system for tests that models power loss: it
// keeps, beside the live state that processes see, the durable state that
// fsync, fdatasync, msync(MS_SYNC) and directory fsyncs have committed, and
// on PowerCut drops everything else, directory entries included.
//
// Killing a process leaves its dirty pages in the kernel page cache, so a
// kill -9 test never exercises a durability promise. Mounting a journal
// directory on lossyfs, killing the writer, cutting the power, unmounting and
// mounting the durable image again does.
//
// Durability rules (README.md beside this file explains each):
//   - file data, size and attributes become durable with an fsync of the file
//     (FUSE FSYNC, which fsync, fdatasync and msync(MS_SYNC) all end in);
//   - a directory entry (create, mkdir, mknod, symlink, link, rename, unlink,
//     rmdir) becomes durable with an fsync of the directory holding it;
//   - PowerCut keeps only the durable state and from then on refuses every
//     request with EIO, so pages the kernel writes back at unmount are lost;
//   - Unmount without PowerCut is a clean shutdown: everything becomes durable.
//
// Mounting needs root, /dev/fuse and FUSE 7.35 (no fusermount: lossyfs
// calls mount(2) itself). Without them Mount returns an error wrapping
// ErrUnavailable.
//
// Deadlock rule: the process serving a mount must not touch memory mapped
// from that mount. A page fault is not a system call: the faulting thread
// blocks without releasing its P, and if the Go runtime then stops the world
// for a garbage collection it waits for that thread forever while the FUSE
// server goroutines that would answer the fault can no longer run. Ordinary
// system calls (open, read, write, fsync, rename) from the serving process
// are safe. Do mmap I/O in child processes.
package lossyfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by Mount's error when this machine cannot host a
// lossyfs mount (not root, no /dev/fuse, mount(2) refused, kernel too old).
var ErrUnavailable = errors.New("lossyfs: cannot mount FUSE here")

// ErrCut is returned by Sync after PowerCut.
var ErrCut = errors.New("lossyfs: power was cut")

// ErrMounted is returned by Remount while the file system is still mounted.
var ErrMounted = errors.New("lossyfs: still mounted")

// minFUSEMinor is the FUSE protocol minor version that added FOPEN_NOFLUSH.
const minFUSEMinor = 35

// Options configure Mount.
type Options struct {
	// Image is the durable state to start from, usually (*FS).Image of a
	// file system whose power was cut. Nil starts with an empty root
	// directory (mode 0755, owned by root).
	Image *Image

	// AllowOther lets users other than the mounting one (root) use the
	// mount. Permission checks are the kernel's (default_permissions) on the
	// stored mode bits and owners.
	AllowOther bool

	// Debug logs every FUSE request and reply to Logger.
	Debug bool

	// Logger receives debug output and go-fuse's own complaints; nil means
	// the standard logger.
	Logger *log.Logger
}

// Stats counts what a power cut drops. PowerCut returns the counts at the
// cut; (*FS).Stats returns them at any time (before a cut: what a cut now
// would drop; after it, the Rejected fields keep growing until unmount).
type Stats struct {
	// Files is the number of non-directory inodes whose live data, size or
	// attributes differ from their durable ones (never fsynced since the
	// last change).
	Files int
	// WriteBytes is the number of bytes carried by WRITE requests not
	// followed by an fsync of their file (an overwrite counts again).
	WriteBytes int64
	// Pages is the number of distinct 4 KiB pages changed since the last
	// fsync of their file.
	Pages int64
	// NamespaceOps is the number of create, mkdir, mknod, symlink, link,
	// rename, unlink and rmdir operations not followed by an fsync of the
	// directory (a rename between two directories counts once in each).
	NamespaceOps int
	// Entries is the number of directory entries whose live and durable
	// versions differ (added, removed or naming another inode): the net
	// effect of NamespaceOps.
	Entries int
	// RejectedRequests is the number of requests refused with EIO after the
	// cut (writes flushed at unmount, fsyncs, reads, lookups, ...).
	RejectedRequests int64
	// RejectedWriteBytes is the number of bytes carried by WRITE requests
	// refused after the cut.
	RejectedWriteBytes int64
}

// Image is an immutable snapshot of a durable state, to be mounted again
// with Options.Image. It holds only what is reachable from the root through
// durable directory entries.
type Image struct {
	nodes           map[uint64]*dnode
	nextIno         uint64
	droppedDirNames int
}

// DroppedDirNames is the number of durable entries dropped when the image
// was taken because they named a directory already named elsewhere (a
// cross-directory rename of a directory where only the destination was
// fsynced).
func (img *Image) DroppedDirNames() int { return img.droppedDirNames }

// FS is a mounted lossy file system.
type FS struct {
	fuse.RawFileSystem // ENOSYS for what lossyfs does not implement

	mu    sync.Mutex
	st    *state
	dirs  map[uint64]*dirHandle
	nextH uint64

	opts       Options
	server     *fuse.Server
	mountpoint string
	mounted    bool
	cutStats   *Stats
}

// Mount serves a lossy file system on mountpoint (an existing directory)
// until Unmount. The serving goroutines belong to this process: keep it
// alive, and follow the deadlock rule in the package documentation.
func Mount(mountpoint string, opts Options) (*FS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	fs := &FS{
		RawFileSystem: fuse.NewDefaultRawFileSystem(),
		st:            newState(opts.Image),
		dirs:          map[uint64]*dirHandle{},
		opts:          opts,
	}
	mo := &fuse.MountOptions{
		FsName:            "lossyfs",
		Name:              "lossyfs",
		DirectMountStrict: true, // no fusermount on these machines; we are root
		Options:           []string{"default_permissions"},
		AllowOther:        opts.AllowOther,
		DisableXAttrs:     true,
		// The kernel must not drop cached pages on its own (on an mtime
		// change; opens use FOPEN_KEEP_CACHE, closes FOPEN_NOFLUSH):
		// dropping a dirty mmap page writes it back first, which would send
		// us data the application never synced and let its next msync of
		// another range make it durable.
		ExplicitDataCacheControl: true,
		Debug:                    opts.Debug,
		Logger:                   opts.Logger,
	}
	if mo.Logger == nil {
		mo.Logger = log.New(quietAbort{log.Writer()}, "", log.LstdFlags)
	}
	srv, err := fuse.NewServer(fs, mountpoint, mo)
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENODEV) {
			return nil, fmt.Errorf("%w: mount %s: %v", ErrUnavailable, mountpoint, err)
		}
		return nil, fmt.Errorf("lossyfs: mount %s: %w", mountpoint, err)
	}
	go srv.Serve()
	if minor := srv.KernelSettings().Minor; minor < minFUSEMinor {
		srv.Unmount()
		return nil, fmt.Errorf("%w: the kernel speaks FUSE 7.%d; lossyfs needs 7.%d (FOPEN_NOFLUSH), or a reader's close would write the writer's dirty mmap pages back", ErrUnavailable, minor, minFUSEMinor)
	}
	if err := srv.WaitMount(); err != nil {
		srv.Unmount()
		return nil, fmt.Errorf("lossyfs: mount %s: %w", mountpoint, err)
	}
	fs.server = srv
	fs.mountpoint = mountpoint
	fs.mounted = true
	return fs, nil
}

// quietAbort drops go-fuse's report of a benign unmount race: a reader
// copying a request (a FORGET, say) while umount tears the connection down
// gets ECONNABORTED instead of ENODEV. Everything else goes through.
type quietAbort struct{ w io.Writer }

func (q quietAbort) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("Failed to read from fuse conn: 103=")) {
		return len(p), nil
	}
	return q.w.Write(p)
}

// Available reports whether this process can mount lossyfs: nil, or an
// error wrapping ErrUnavailable that says why not.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: mounting without fusermount needs root (euid is %d)", ErrUnavailable, os.Geteuid())
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	f.Close()
	return nil
}

// Mountpoint returns the directory the file system is mounted on.
func (fs *FS) Mountpoint() string { return fs.mountpoint }

// PowerCut drops, atomically with respect to every request, all that is not
// durable, and returns what was dropped. From then on until Unmount every
// request but closing files fails with EIO and changes nothing; reads fail
// too, so nothing can be read from a dead disk by mistake. Calling it again
// returns the first cut's counts.
func (fs *FS) PowerCut() Stats {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.cutStats == nil {
		st := fs.st.stats()
		fs.cutStats = &st
		fs.st.cut = true
	}
	return *fs.cutStats
}

// Stats returns the current counts: before a cut, what a cut now would drop;
// after it, the counts at the cut with the Rejected fields up to date.
func (fs *FS) Stats() Stats {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.cutStats == nil {
		return fs.st.stats()
	}
	st := *fs.cutStats
	st.RejectedRequests = fs.st.rejected
	st.RejectedWriteBytes = fs.st.rejectedBytes
	return st
}

// Sync makes the whole live state durable, as if every file and directory
// had been fsynced: for setting up a test's starting point. It first fsyncs
// every named regular file through the mount, which has the kernel write
// back (and wait for) the dirty pages of mappings that are still alive.
// (syncfs is not enough: on FUSE it can return while the write-back is
// still queued.)
func (fs *FS) Sync() error {
	fs.mu.Lock()
	cut, mounted := fs.st.cut, fs.mounted
	var files []string
	if mounted {
		files = fs.st.regularFiles()
	}
	fs.mu.Unlock()
	if cut {
		return ErrCut
	}
	// Outside the lock: the write-back and the FSYNCs are served by our
	// own handlers.
	for _, name := range files {
		path := filepath.Join(fs.mountpoint, name)
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("lossyfs: sync %s: %w", path, err)
		}
		err = unix.Fsync(fd)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("lossyfs: sync %s: %w", path, err)
		}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.st.cut {
		return ErrCut
	}
	fs.st.syncAll()
	return nil
}

// Unmount detaches the file system. Processes must have closed their files
// and mappings on it (kill children first), or the kernel refuses with
// EBUSY. Without a PowerCut before it, Unmount is a clean shutdown: the
// pages the kernel writes back while unmounting, and then the whole live
// state, become durable.
func (fs *FS) Unmount() error {
	fs.mu.Lock()
	mounted := fs.mounted
	fs.mu.Unlock()
	if !mounted {
		return nil
	}
	if err := fs.server.Unmount(); err != nil {
		return fmt.Errorf("lossyfs: unmount %s (is a process still using it?): %w", fs.mountpoint, err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.mounted = false
	if !fs.st.cut {
		fs.st.syncAll()
	}
	return nil
}

// Image returns a snapshot of the durable state, to mount with
// Options.Image. Taken before a cut it is what a cut now would keep.
func (fs *FS) Image() *Image {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.st.image()
}

// Remount mounts the durable state of an unmounted file system on
// mountpoint (the same directory or another), with the same options.
func (fs *FS) Remount(mountpoint string) (*FS, error) {
	fs.mu.Lock()
	mounted := fs.mounted
	fs.mu.Unlock()
	if mounted {
		return nil, fmt.Errorf("%w: unmount %s before remounting", ErrMounted, fs.mountpoint)
	}
	opts := fs.opts
	opts.Image = fs.Image()
	return Mount(mountpoint, opts)
}
