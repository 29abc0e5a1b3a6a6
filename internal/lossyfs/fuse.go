package lossyfs

import (
	"sort"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// The FUSE request handlers. Each takes fs.mu for its whole duration, so a
// PowerCut falls cleanly between two requests. After the cut every request
// except FORGET, FLUSH, RELEASE and RELEASEDIR fails with EIO.

// cacheTimeout is how long the kernel may trust entries and attributes.
// Every change reaches lossyfs through this kernel mount, so the kernel's
// caches cannot go stale; the timeout only bounds memory of old answers.
const cacheTimeout = time.Second

const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
	fallocZeroRange = 0x10
)

type dirHandle struct {
	names []string // snapshot at OPENDIR, "." and ".." first
	dir   uint64
}

// String names the file system (go-fuse uses it as the mount's subtype).
func (fs *FS) String() string { return "lossyfs" }

// dead counts and refuses a request that arrived after the cut.
func (fs *FS) dead(writeBytes int) bool {
	if !fs.st.cut {
		return false
	}
	fs.st.rejected++
	fs.st.rejectedBytes += int64(writeBytes)
	return true
}

func (fs *FS) node(ino uint64) *inode { return fs.st.live[ino] }

func (fs *FS) dirNode(ino uint64) (*inode, fuse.Status) {
	n := fs.st.live[ino]
	if n == nil {
		return nil, fuse.ENOENT
	}
	if !isDir(n.mode) {
		return nil, fuse.ENOTDIR
	}
	return n, fuse.OK
}

func fillAttr(n *inode, a *fuse.Attr) {
	a.Ino = n.ino
	a.Size = uint64(n.size)
	switch {
	case isDir(n.mode):
		a.Size = pageSize
	case isLink(n.mode):
		a.Size = uint64(len(n.target))
	}
	// Report every block as allocated: fallocate'd space reads as reserved.
	a.Blocks = (a.Size + 511) / 512
	a.Mode = n.mode
	a.Nlink = n.nlink()
	a.Uid, a.Gid = n.uid, n.gid
	a.Rdev = n.rdev
	a.Blksize = pageSize
	a.Atime, a.Atimensec = uint64(n.atime/1e9), uint32(n.atime%1e9)
	a.Mtime, a.Mtimensec = uint64(n.mtime/1e9), uint32(n.mtime%1e9)
	a.Ctime, a.Ctimensec = uint64(n.ctime/1e9), uint32(n.ctime%1e9)
}

// entry answers a request that hands the kernel a reference to n.
func (fs *FS) entry(n *inode, out *fuse.EntryOut) {
	n.nlookup++
	out.NodeId = n.ino
	out.Generation = 1
	out.SetEntryTimeout(cacheTimeout)
	out.SetAttrTimeout(cacheTimeout)
	fillAttr(n, &out.Attr)
}

// Lookup resolves a name in a directory.
func (fs *FS) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	dir, st := fs.dirNode(h.NodeId)
	if !st.Ok() {
		return st
	}
	c, ok := dir.entries[name]
	if !ok {
		return fuse.ENOENT
	}
	fs.entry(fs.node(c), out)
	return fuse.OK
}

// Forget drops kernel references; an inode without names or references is
// freed.
func (fs *FS) Forget(ino, nlookup uint64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.node(ino)
	if n == nil {
		return
	}
	n.nlookup -= min(n.nlookup, nlookup)
	fs.st.maybeFree(n)
}

// GetAttr answers stat.
func (fs *FS) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	n := fs.node(in.NodeId)
	if n == nil {
		return fuse.ENOENT
	}
	out.SetTimeout(cacheTimeout)
	fillAttr(n, &out.Attr)
	return fuse.OK
}

// SetAttr is chmod, chown, truncate and utimes. The change is live until
// the file is fsynced.
func (fs *FS) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	n := fs.node(in.NodeId)
	if n == nil {
		return fuse.ENOENT
	}
	if size, ok := in.GetSize(); ok {
		switch {
		case isDir(n.mode):
			return fuse.Status(syscall.EISDIR)
		case !isReg(n.mode):
			return fuse.EINVAL
		case size > 1<<62:
			return fuse.Status(syscall.EFBIG)
		}
		fs.st.truncate(n, int64(size))
	}
	if mode, ok := in.GetMode(); ok {
		n.mode = n.mode&syscall.S_IFMT | mode
	}
	if uid, ok := in.GetUID(); ok {
		n.uid = uid
	}
	if gid, ok := in.GetGID(); ok {
		n.gid = gid
	}
	if t, ok := in.GetATime(); ok {
		n.atime = t.UnixNano()
	}
	if t, ok := in.GetMTime(); ok {
		n.mtime = t.UnixNano()
	}
	n.ctime = now()
	if t, ok := in.GetCTime(); ok {
		n.ctime = t.UnixNano()
	}
	n.metaDirty = true
	out.SetTimeout(cacheTimeout)
	fillAttr(n, &out.Attr)
	return fuse.OK
}

// create makes a new inode named name in dir (live only).
func (fs *FS) create(h *fuse.InHeader, name string, mode uint32) (*inode, fuse.Status) {
	dir, st := fs.dirNode(h.NodeId)
	if !st.Ok() {
		return nil, st
	}
	if _, ok := dir.entries[name]; ok {
		return nil, fuse.Status(syscall.EEXIST)
	}
	n := fs.st.newInode(mode, h.Uid, h.Gid)
	fs.st.link(dir, name, n)
	dir.nsPending++
	return n, fuse.OK
}

// Mknod creates a regular file, FIFO, socket or device node.
func (fs *FS) Mknod(_ <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	n, st := fs.create(&in.InHeader, name, in.Mode)
	if !st.Ok() {
		return st
	}
	n.rdev = in.Rdev
	fs.entry(n, out)
	return fuse.OK
}

// Mkdir creates a directory.
func (fs *FS) Mkdir(_ <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	n, st := fs.create(&in.InHeader, name, syscall.S_IFDIR|in.Mode&07777)
	if !st.Ok() {
		return st
	}
	fs.entry(n, out)
	return fuse.OK
}

// Symlink creates a symbolic link.
func (fs *FS) Symlink(_ <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	n, st := fs.create(h, name, syscall.S_IFLNK|0o777)
	if !st.Ok() {
		return st
	}
	n.target = target
	n.size = int64(len(target))
	fs.entry(n, out)
	return fuse.OK
}

// Readlink returns a symbolic link's target.
func (fs *FS) Readlink(_ <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return nil, fuse.EIO
	}
	n := fs.node(h.NodeId)
	if n == nil {
		return nil, fuse.ENOENT
	}
	if !isLink(n.mode) {
		return nil, fuse.EINVAL
	}
	return []byte(n.target), fuse.OK
}

// Create is open(O_CREAT) of a name the kernel did not find.
func (fs *FS) Create(_ <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	dir, st := fs.dirNode(in.NodeId)
	if !st.Ok() {
		return st
	}
	if c, ok := dir.entries[name]; ok {
		// Created by someone else since the kernel's lookup.
		if in.Flags&syscall.O_EXCL != 0 {
			return fuse.Status(syscall.EEXIST)
		}
		n := fs.node(c)
		if isDir(n.mode) {
			return fuse.Status(syscall.EISDIR)
		}
		fs.entry(n, &out.EntryOut)
	} else {
		n, st := fs.create(&in.InHeader, name, syscall.S_IFREG|in.Mode&07777)
		if !st.Ok() {
			return st
		}
		fs.entry(n, &out.EntryOut)
	}
	out.OpenOut.OpenFlags = fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH
	return fuse.OK
}

// Unlink removes a non-directory name.
func (fs *FS) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	dir, st := fs.dirNode(h.NodeId)
	if !st.Ok() {
		return st
	}
	c, ok := dir.entries[name]
	if !ok {
		return fuse.ENOENT
	}
	if isDir(fs.node(c).mode) {
		return fuse.Status(syscall.EISDIR)
	}
	fs.st.unlink(dir, name)
	dir.nsPending++
	return fuse.OK
}

// Rmdir removes an empty directory.
func (fs *FS) Rmdir(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	dir, st := fs.dirNode(h.NodeId)
	if !st.Ok() {
		return st
	}
	c, ok := dir.entries[name]
	if !ok {
		return fuse.ENOENT
	}
	child := fs.node(c)
	if !isDir(child.mode) {
		return fuse.ENOTDIR
	}
	if len(child.entries) > 0 {
		return fuse.Status(syscall.ENOTEMPTY)
	}
	fs.st.unlink(dir, name)
	dir.nsPending++
	return fuse.OK
}

// Rename moves a name, with RENAME_NOREPLACE and RENAME_EXCHANGE.
func (fs *FS) Rename(_ <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	const noReplace, exchange = 1, 2
	if in.Flags&^(noReplace|exchange) != 0 || in.Flags == noReplace|exchange {
		return fuse.EINVAL
	}
	src, st := fs.dirNode(in.NodeId)
	if !st.Ok() {
		return st
	}
	dst, st := fs.dirNode(in.Newdir)
	if !st.Ok() {
		return st
	}
	sc, ok := src.entries[oldName]
	if !ok {
		return fuse.ENOENT
	}
	moved := fs.node(sc)
	dc, exists := dst.entries[newName]
	counted := func() fuse.Status {
		src.nsPending++
		if dst != src {
			dst.nsPending++
		}
		return fuse.OK
	}
	if in.Flags&exchange != 0 {
		if !exists {
			return fuse.ENOENT
		}
		other := fs.node(dc)
		fs.st.unlinkNoFree(src, oldName)
		fs.st.unlinkNoFree(dst, newName)
		fs.st.link(dst, newName, moved)
		fs.st.link(src, oldName, other)
		return counted()
	}
	if exists {
		if in.Flags&noReplace != 0 {
			return fuse.Status(syscall.EEXIST)
		}
		if dc == sc {
			return fuse.OK // two names of one inode: POSIX says do nothing
		}
		victim := fs.node(dc)
		switch {
		case isDir(moved.mode) && !isDir(victim.mode):
			return fuse.ENOTDIR
		case !isDir(moved.mode) && isDir(victim.mode):
			return fuse.Status(syscall.EISDIR)
		case isDir(victim.mode) && len(victim.entries) > 0:
			return fuse.Status(syscall.ENOTEMPTY)
		}
	}
	fs.st.unlinkNoFree(src, oldName)
	if exists {
		fs.st.unlink(dst, newName)
	}
	fs.st.link(dst, newName, moved)
	return counted()
}

// Link adds a hard link.
func (fs *FS) Link(_ <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	dir, st := fs.dirNode(in.NodeId)
	if !st.Ok() {
		return st
	}
	n := fs.node(in.Oldnodeid)
	if n == nil {
		return fuse.ENOENT
	}
	if isDir(n.mode) {
		return fuse.EPERM
	}
	if _, ok := dir.entries[name]; ok {
		return fuse.Status(syscall.EEXIST)
	}
	fs.st.link(dir, name, n)
	dir.nsPending++
	n.ctime = now()
	fs.entry(n, out)
	return fuse.OK
}

// Open opens a file. lossyfs keeps no per-open state: an open file is its
// inode, which the kernel holds a reference to while it is open.
func (fs *FS) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	n := fs.node(in.NodeId)
	if n == nil {
		return fuse.ENOENT
	}
	if isDir(n.mode) {
		return fuse.Status(syscall.EISDIR)
	}
	// Keep the page cache across opens and do not write the inode back on
	// close: either would send another process's dirty mmap pages to us
	// early (see Mount).
	out.OpenFlags = fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH
	return fuse.OK
}

// Read reads live data.
func (fs *FS) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return nil, fuse.EIO
	}
	n := fs.node(in.NodeId)
	if n == nil {
		return nil, fuse.ENOENT
	}
	if !isReg(n.mode) {
		return nil, fuse.EINVAL
	}
	if len(buf) < int(in.Size) {
		buf = make([]byte, in.Size)
	}
	k := n.readAt(int64(in.Offset), buf[:in.Size])
	return fuse.ReadResultData(buf[:k]), fuse.OK
}

// Writev stores data live: write(2) (write-through, as the kernel's
// writeback cache is off) and the write-back of dirty mmap pages.
func (fs *FS) Writev(_ <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	total := 0
	for _, d := range data {
		total += len(d)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(total) {
		return 0, fuse.EIO
	}
	n := fs.node(in.NodeId)
	if n == nil {
		return 0, fuse.ENOENT
	}
	if !isReg(n.mode) {
		return 0, fuse.EINVAL
	}
	if in.Offset > 1<<62 {
		return 0, fuse.Status(syscall.EFBIG)
	}
	off := int64(in.Offset)
	for _, d := range data {
		fs.st.writeAt(n, off, d)
		off += int64(len(d))
	}
	n.pendingBytes += int64(total)
	fs.st.written += int64(total)
	return uint32(total), fuse.OK
}

// Write is Writev with one buffer.
func (fs *FS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	return fs.Writev(cancel, in, [][]byte{data})
}

// Flush is close(2); nothing becomes durable.
func (fs *FS) Flush(_ <-chan struct{}, _ *fuse.FlushIn) fuse.Status { return fuse.OK }

// Release is the last close of an open file.
func (fs *FS) Release(_ <-chan struct{}, _ *fuse.ReleaseIn) {}

// Fsync makes the file's data, size and attributes durable. fsync,
// fdatasync and msync(MS_SYNC) all arrive here, after the kernel has sent
// the dirty pages of the range it syncs; FSYNC itself carries no range.
func (fs *FS) Fsync(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	n := fs.node(in.NodeId)
	if n == nil {
		return fuse.ENOENT
	}
	fs.st.syncFile(n)
	return fuse.OK
}

// Fallocate supports mode 0 (extend), KEEP_SIZE (no change: allocation is
// not modelled), PUNCH_HOLE|KEEP_SIZE and ZERO_RANGE[|KEEP_SIZE].
func (fs *FS) Fallocate(_ <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	n := fs.node(in.NodeId)
	if n == nil {
		return fuse.ENOENT
	}
	if !isReg(n.mode) {
		return fuse.Status(syscall.ENODEV)
	}
	if in.Offset > 1<<62 || in.Length > 1<<62 || in.Offset+in.Length > 1<<62 {
		return fuse.Status(syscall.EFBIG)
	}
	off, end := int64(in.Offset), int64(in.Offset+in.Length)
	keep := in.Mode&fallocKeepSize != 0
	switch in.Mode &^ fallocKeepSize {
	case 0:
	case fallocPunchHole:
		if !keep {
			return fuse.Status(syscall.EOPNOTSUPP)
		}
		fs.st.zeroRange(n, off, end)
	case fallocZeroRange:
		fs.st.zeroRange(n, off, end)
	default:
		return fuse.Status(syscall.EOPNOTSUPP)
	}
	if !keep && end > n.size {
		n.size = end
		n.metaDirty = true
		t := now()
		n.mtime, n.ctime = t, t
	}
	return fuse.OK
}

// OpenDir snapshots a directory's names for READDIR.
func (fs *FS) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	dir, st := fs.dirNode(in.NodeId)
	if !st.Ok() {
		return st
	}
	names := make([]string, 0, len(dir.entries))
	for name := range dir.entries {
		names = append(names, name)
	}
	sort.Strings(names)
	fs.nextH++
	fs.dirs[fs.nextH] = &dirHandle{names: append([]string{".", ".."}, names...), dir: dir.ino}
	out.Fh = fs.nextH
	return fuse.OK
}

// readDir lists entries from offset in.Offset; plus also answers lookups.
func (fs *FS) readDir(in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	h := fs.dirs[in.Fh]
	dir := fs.node(in.NodeId)
	if h == nil || dir == nil {
		return fuse.EBADF
	}
	for i := int(in.Offset); i < len(h.names); i++ {
		name := h.names[i]
		var n *inode
		switch name {
		case ".":
			n = dir
		case "..":
			n = fs.node(dir.parent)
		default:
			if c, ok := dir.entries[name]; ok {
				n = fs.node(c)
			}
		}
		if n == nil {
			continue // removed since OPENDIR
		}
		de := fuse.DirEntry{Name: name, Mode: n.mode, Ino: n.ino, Off: uint64(i + 1)}
		if !plus {
			if !out.AddDirEntry(de) {
				break
			}
			continue
		}
		eo := out.AddDirLookupEntry(de)
		if eo == nil {
			break
		}
		if name != "." && name != ".." {
			fs.entry(n, eo) // NodeId 0 for the dot entries: no reference taken
		}
	}
	return fuse.OK
}

// ReadDir lists a directory.
func (fs *FS) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return fs.readDir(in, out, false)
}

// ReadDirPlus lists a directory with attributes.
func (fs *FS) ReadDirPlus(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return fs.readDir(in, out, true)
}

// ReleaseDir closes a directory.
func (fs *FS) ReleaseDir(in *fuse.ReleaseIn) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.dirs, in.Fh)
}

// FsyncDir makes the directory's entries durable (and its attributes).
func (fs *FS) FsyncDir(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	dir, st := fs.dirNode(in.NodeId)
	if !st.Ok() {
		return st
	}
	fs.st.syncFile(dir)
	fs.st.syncDir(dir)
	return fuse.OK
}

// StatFs reports a large, mostly free file system.
func (fs *FS) StatFs(_ <-chan struct{}, _ *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dead(0) {
		return fuse.EIO
	}
	var used uint64
	for _, n := range fs.st.live {
		used += uint64(len(n.pages))
	}
	const blocks = 1 << 28 // 1 TiB of 4 KiB blocks
	out.Bsize, out.Frsize, out.NameLen = pageSize, pageSize, 255
	out.Blocks = blocks
	out.Bfree = blocks - min(used, blocks)
	out.Bavail = out.Bfree
	out.Files = 1 << 24
	out.Ffree = out.Files - min(uint64(len(fs.st.live)), out.Files)
	return fuse.OK
}
