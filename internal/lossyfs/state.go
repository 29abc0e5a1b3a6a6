package lossyfs

import (
	"sort"
	"syscall"
	"time"
)

// pageSize is the granularity of the in-memory data map. It matches the
// kernel page size on amd64, so one page written back by the kernel is one
// map entry.
const pageSize = 4096

const rootIno = 1

type page [pageSize]byte

// inode is one node of the live state: what processes see.
type inode struct {
	ino     uint64
	mode    uint32 // S_IFMT | permission bits
	uid     uint32
	gid     uint32
	rdev    uint32
	size    int64
	atime   int64 // ns since the epoch
	mtime   int64
	ctime   int64
	nlookup uint64 // kernel references (LOOKUP replies minus FORGETs)
	names   int    // live directory entries naming this inode
	subdirs int    // directories: live subdirectories (for st_nlink)
	parent  uint64 // directories: the live parent

	pages   map[int64]*page // regular files: non-zero pages; absent means zeros
	target  string          // symlinks
	entries map[string]uint64

	// What the next fsync must carry to the durable record.
	dirty        map[int64]struct{} // pages changed since the last fsync
	metaDirty    bool               // size, mode, owner or times changed since the last fsync
	pendingBytes int64              // bytes of WRITE requests since the last fsync
	nsPending    int                // directories: namespace operations since the last fsync
}

// dnode is one node of the durable state: what survives a power cut. Its
// pages are immutable once stored (an fsync stores fresh copies), so images
// and remounts share them.
type dnode struct {
	mode    uint32
	uid     uint32
	gid     uint32
	rdev    uint32
	size    int64
	atime   int64
	mtime   int64
	ctime   int64
	pages   map[int64]*page
	target  string
	entries map[string]uint64
	refs    int // durable directory entries naming this node
}

func isDir(mode uint32) bool  { return mode&syscall.S_IFMT == syscall.S_IFDIR }
func isReg(mode uint32) bool  { return mode&syscall.S_IFMT == syscall.S_IFREG }
func isLink(mode uint32) bool { return mode&syscall.S_IFMT == syscall.S_IFLNK }

func now() int64 { return time.Now().UnixNano() }

// state is the whole model: the live tree, the durable tree and the
// counters. Every method is called with FS.mu held.
type state struct {
	live    map[uint64]*inode
	durable map[uint64]*dnode
	nextIno uint64
	cut     bool

	// written counts every byte WRITE requests carried (tests use it).
	written int64

	// Counters of requests refused after the cut.
	rejected      int64
	rejectedBytes int64
}

func newState(img *Image) *state {
	s := &state{live: map[uint64]*inode{}, durable: map[uint64]*dnode{}, nextIno: rootIno + 1}
	if img == nil {
		t := now()
		root := &dnode{mode: syscall.S_IFDIR | 0o755, atime: t, mtime: t, ctime: t, entries: map[string]uint64{}}
		img = &Image{nodes: map[uint64]*dnode{rootIno: root}, nextIno: rootIno + 1}
	}
	s.nextIno = img.nextIno
	for ino, d := range img.nodes {
		dd := d.clone()
		dd.refs = 0
		s.durable[ino] = dd
		n := &inode{
			ino: ino, mode: d.mode, uid: d.uid, gid: d.gid, rdev: d.rdev, size: d.size,
			atime: d.atime, mtime: d.mtime, ctime: d.ctime, target: d.target,
		}
		if isReg(d.mode) {
			n.pages = make(map[int64]*page, len(d.pages))
			for i, p := range d.pages {
				c := *p
				n.pages[i] = &c
			}
			n.dirty = map[int64]struct{}{}
		}
		if isDir(d.mode) {
			n.entries = make(map[string]uint64, len(d.entries))
			for name, c := range d.entries {
				n.entries[name] = c
			}
		}
		s.live[ino] = n
	}
	// Link counts and parents follow from the (sanitised) entries.
	for ino, d := range s.durable {
		for _, c := range d.entries {
			s.durable[c].refs++
			child := s.live[c]
			child.names++
			if isDir(child.mode) {
				child.parent = ino
				s.live[ino].subdirs++
			}
		}
	}
	s.live[rootIno].parent = rootIno
	s.live[rootIno].names = 1 // the mount itself; never freed
	for ino := range s.live {
		if ino >= s.nextIno {
			s.nextIno = ino + 1
		}
	}
	return s
}

func (d *dnode) clone() *dnode {
	c := *d
	if d.pages != nil {
		c.pages = make(map[int64]*page, len(d.pages))
		for i, p := range d.pages {
			c.pages[i] = p
		}
	}
	if d.entries != nil {
		c.entries = make(map[string]uint64, len(d.entries))
		for name, ino := range d.entries {
			c.entries[name] = ino
		}
	}
	return &c
}

func (s *state) newInode(mode, uid, gid uint32) *inode {
	t := now()
	n := &inode{ino: s.nextIno, mode: mode, uid: uid, gid: gid, atime: t, mtime: t, ctime: t, metaDirty: true}
	s.nextIno++
	switch {
	case isReg(mode):
		n.pages = map[int64]*page{}
		n.dirty = map[int64]struct{}{}
	case isDir(mode):
		n.entries = map[string]uint64{}
	}
	s.live[n.ino] = n
	return n
}

// nlink is the st_nlink the kernel is told.
func (n *inode) nlink() uint32 {
	if isDir(n.mode) {
		if n.names == 0 {
			return 0
		}
		return uint32(2 + n.subdirs)
	}
	return uint32(n.names)
}

// link adds name -> child in dir (live only). Callers count the namespace
// operation in nsPending.
func (s *state) link(dir *inode, name string, child *inode) {
	dir.entries[name] = child.ino
	child.names++
	if isDir(child.mode) {
		child.parent = dir.ino
		dir.subdirs++
	}
	t := now()
	dir.mtime, dir.ctime = t, t
}

// unlinkNoFree removes name from dir (live only) and returns the inode it
// named, which the caller links elsewhere or frees.
func (s *state) unlinkNoFree(dir *inode, name string) *inode {
	child := s.live[dir.entries[name]]
	delete(dir.entries, name)
	t := now()
	dir.mtime, dir.ctime = t, t
	child.names--
	child.ctime = t
	if isDir(child.mode) {
		dir.subdirs--
	}
	return child
}

// unlink removes name from dir (live only) and frees the inode it named if
// nothing references it any more.
func (s *state) unlink(dir *inode, name string) {
	s.maybeFree(s.unlinkNoFree(dir, name))
}

// maybeFree drops a live inode that has no name and no kernel reference.
func (s *state) maybeFree(n *inode) {
	if n.ino == rootIno || n.names > 0 || n.nlookup > 0 {
		return
	}
	delete(s.live, n.ino)
	if !s.cut {
		s.collect(n.ino)
	}
}

// collect frees durable records that can never be reached again: no durable
// entry names them and their live inode is gone (so no fsync of a directory
// can give them a name). Freeing a durable directory releases its entries.
func (s *state) collect(ino uint64) {
	work := []uint64{ino}
	for len(work) > 0 {
		ino := work[len(work)-1]
		work = work[:len(work)-1]
		d := s.durable[ino]
		if d == nil || ino == rootIno || d.refs > 0 || s.live[ino] != nil {
			continue
		}
		delete(s.durable, ino)
		for _, c := range d.entries {
			if cd := s.durable[c]; cd != nil {
				cd.refs--
				work = append(work, c)
			}
		}
	}
}

// writeAt stores b at off in a regular file (live only).
func (s *state) writeAt(n *inode, off int64, b []byte) {
	end := off + int64(len(b))
	for len(b) > 0 {
		idx := off / pageSize
		po := int(off % pageSize)
		k := min(len(b), pageSize-po)
		chunk := b[:k]
		p := n.pages[idx]
		if p == nil && !allZero(chunk) {
			p = new(page)
			n.pages[idx] = p
		}
		if p != nil {
			copy(p[po:], chunk)
			if allZero(p[:]) {
				delete(n.pages, idx) // keep fallocate'd-then-zero-filled files sparse
			}
		}
		n.dirty[idx] = struct{}{}
		off += int64(k)
		b = b[k:]
	}
	if end > n.size {
		n.size = end
	}
	t := now()
	n.mtime, n.ctime = t, t
}

// readAt copies the live content at off into b, returning the count (short
// at end of file).
func (n *inode) readAt(off int64, b []byte) int {
	if off >= n.size {
		return 0
	}
	b = b[:min(int64(len(b)), n.size-off)]
	done := 0
	for done < len(b) {
		idx := off / pageSize
		po := int(off % pageSize)
		k := min(len(b)-done, pageSize-po)
		if p := n.pages[idx]; p != nil {
			copy(b[done:done+k], p[po:])
		} else {
			clear(b[done : done+k])
		}
		done += k
		off += int64(k)
	}
	return done
}

// zeroRange zeroes [off, end) of the live content (not past the size).
func (s *state) zeroRange(n *inode, off, end int64) {
	end = min(end, n.size)
	for off < end {
		idx := off / pageSize
		po := off % pageSize
		k := min(end-off, pageSize-po)
		if p := n.pages[idx]; p != nil {
			clear(p[po : po+k])
			if allZero(p[:]) {
				delete(n.pages, idx)
			}
		}
		n.dirty[idx] = struct{}{}
		off += k
	}
	t := now()
	n.mtime, n.ctime = t, t
}

// truncate sets a regular file's live size.
func (s *state) truncate(n *inode, size int64) {
	if size < n.size {
		// Zero the tail of the last kept page and drop the rest. Every page
		// at or past the cut that exists live or durably is marked dirty, so
		// a later fsync cannot resurrect stale durable bytes when the file
		// grows again.
		s.zeroRange(n, size, n.size)
		first := size / pageSize
		for idx := range n.pages {
			if idx*pageSize >= size {
				delete(n.pages, idx)
			}
		}
		if d := s.durable[n.ino]; d != nil {
			for idx := range d.pages {
				if idx >= first {
					n.dirty[idx] = struct{}{}
				}
			}
		}
	}
	n.size = size
	n.metaDirty = true
	t := now()
	n.mtime, n.ctime = t, t
}

// syncFile is FSYNC: the inode's live data, size and attributes become its
// durable content. It gives the inode no name: that takes an fsync of a
// directory holding one.
func (s *state) syncFile(n *inode) {
	d := s.durable[n.ino]
	if d == nil {
		d = &dnode{}
		if isDir(n.mode) {
			d.entries = map[string]uint64{}
		}
		s.durable[n.ino] = d
	}
	d.mode, d.uid, d.gid, d.rdev = n.mode, n.uid, n.gid, n.rdev
	d.atime, d.mtime, d.ctime = n.atime, n.mtime, n.ctime
	d.target = n.target
	d.size = n.size
	if isReg(n.mode) {
		if d.pages == nil {
			d.pages = map[int64]*page{}
		}
		for idx := range n.dirty {
			if p := n.pages[idx]; p != nil && idx*pageSize < n.size {
				c := *p
				d.pages[idx] = &c
			} else {
				delete(d.pages, idx)
			}
		}
		clear(n.dirty)
		for idx := range d.pages {
			if idx*pageSize >= d.size {
				delete(d.pages, idx)
			}
		}
	}
	n.metaDirty = false
	n.pendingBytes = 0
}

// syncDir is FSYNCDIR: the directory's live entries become its durable
// entries. A child that has no durable record yet gets one as it was created
// (type, mode, owner, symlink target; a regular file empty, a directory with
// no entries): its content needs its own fsync.
func (s *state) syncDir(dir *inode) {
	d := s.durable[dir.ino]
	if d == nil {
		d = &dnode{entries: map[string]uint64{}}
		s.durable[dir.ino] = d
	}
	d.mode, d.uid, d.gid = dir.mode, dir.uid, dir.gid
	d.atime, d.mtime, d.ctime = dir.atime, dir.mtime, dir.ctime
	old := d.entries
	d.entries = make(map[string]uint64, len(dir.entries))
	for name, c := range dir.entries {
		d.entries[name] = c
		cd := s.durable[c]
		if cd == nil {
			child := s.live[c]
			cd = &dnode{mode: child.mode, uid: child.uid, gid: child.gid, rdev: child.rdev,
				atime: child.ctime, mtime: child.ctime, ctime: child.ctime, target: child.target}
			switch {
			case isDir(child.mode):
				cd.entries = map[string]uint64{}
			case isReg(child.mode):
				cd.pages = map[int64]*page{}
			case isLink(child.mode):
				cd.size = int64(len(child.target))
			}
			s.durable[c] = cd
		}
		cd.refs++
	}
	for _, c := range old {
		if cd := s.durable[c]; cd != nil {
			cd.refs--
		}
	}
	for _, c := range old {
		s.collect(c)
	}
	dir.nsPending = 0
}

// syncAll makes the whole live state durable (Sync, clean unmount).
func (s *state) syncAll() {
	// Files first, so a directory's new children already have their content.
	for _, n := range s.live {
		if !isDir(n.mode) {
			s.syncFile(n)
		}
	}
	for _, n := range s.live {
		if isDir(n.mode) {
			s.syncFile(n)
			s.syncDir(n)
		}
	}
}

// regularFiles returns one live path (relative to the root) of every named
// regular file.
func (s *state) regularFiles() []string {
	var out []string
	type item struct {
		ino  uint64
		path string
	}
	seen := map[uint64]bool{}
	queue := []item{{rootIno, ""}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		for name, c := range s.live[it.ino].entries {
			n := s.live[c]
			p := it.path + "/" + name
			switch {
			case seen[c]:
			case isDir(n.mode):
				queue = append(queue, item{c, p})
			case isReg(n.mode):
				out = append(out, p)
			}
			seen[c] = true
		}
	}
	sort.Strings(out)
	return out
}

// stats measures what a power cut now would drop.
func (s *state) stats() Stats {
	var st Stats
	for ino, n := range s.live {
		if isDir(n.mode) {
			st.NamespaceOps += n.nsPending
			var de map[string]uint64
			if d := s.durable[ino]; d != nil {
				de = d.entries
			}
			st.Entries += diffEntries(n.entries, de)
			continue
		}
		if len(n.dirty) > 0 || n.metaDirty || n.pendingBytes > 0 {
			st.Files++
		}
		st.WriteBytes += n.pendingBytes
		st.Pages += int64(len(n.dirty))
	}
	st.RejectedRequests = s.rejected
	st.RejectedWriteBytes = s.rejectedBytes
	return st
}

func diffEntries(a, b map[string]uint64) int {
	n := 0
	for name, ino := range a {
		if o, ok := b[name]; !ok || o != ino {
			n++
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			n++
		}
	}
	return n
}

// image copies the durable tree reachable from the root. Per-directory
// durability can leave a directory named by two durable entries (a rename
// whose both directories were not fsynced); the breadth-first walk, in name
// order, keeps the first and drops the others, so the image is a tree.
func (s *state) image() *Image {
	img := &Image{nodes: map[uint64]*dnode{}, nextIno: s.nextIno}
	img.nodes[rootIno] = s.durable[rootIno].clone()
	queue := []uint64{rootIno}
	for len(queue) > 0 {
		d := img.nodes[queue[0]]
		queue = queue[1:]
		names := make([]string, 0, len(d.entries))
		for name := range d.entries {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			c := d.entries[name]
			cd := s.durable[c]
			if cd == nil {
				delete(d.entries, name)
				continue
			}
			if have, ok := img.nodes[c]; ok {
				if isDir(have.mode) {
					delete(d.entries, name)
					img.droppedDirNames++
				}
				continue
			}
			img.nodes[c] = cd.clone()
			if isDir(cd.mode) {
				queue = append(queue, c)
			}
		}
	}
	for _, d := range img.nodes {
		d.refs = 0
	}
	return img
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
