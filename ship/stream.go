package ship

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of StreamConfig.
const (
	DefaultDuplicates = 2 * time.Minute
	DefaultMaxMsgSize = 1 << 20 // the server's default max_payload
)

// DefaultSubject is the subject a journal is shipped on when none is given.
func DefaultSubject(stream string) string { return "mdjournal." + stream }

// StreamConfig are the explicit settings of the stream a journal is shipped
// to. The zero value of a field means its default.
type StreamConfig struct {
	Name    string
	Subject string // default DefaultSubject(Name)
	// Storage is jetstream.FileStorage (the zero value) or MemoryStorage.
	Storage jetstream.StorageType
	// Replicas is the number of servers holding the stream (Raft, 1..5;
	// default 1). A message is acknowledged once a majority stored it.
	Replicas int
	// Duplicates is the window in which the server drops a second message
	// with the same id (default DefaultDuplicates).
	Duplicates time.Duration
	// MaxMsgSize bounds one message (default DefaultMaxMsgSize); a
	// shipper's batches must fit in it.
	MaxMsgSize int32
	// MaxAge and MaxBytes bound what the stream keeps (0: unlimited). A
	// mirror started after messages expired starts at the first one left.
	MaxAge   time.Duration
	MaxBytes int64
}

func (c *StreamConfig) fill() error {
	if c.Name == "" {
		return errors.New("ship: stream name is required")
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject(c.Name)
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = DefaultMaxMsgSize
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = -1
	}
	return nil
}

// JetStream returns the server-side configuration of c.
func (c StreamConfig) JetStream() jetstream.StreamConfig {
	c.fill()
	return jetstream.StreamConfig{
		Name:       c.Name,
		Subjects:   []string{c.Subject},
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		Storage:    c.Storage,
		Replicas:   c.Replicas,
		Duplicates: c.Duplicates,
		MaxMsgSize: c.MaxMsgSize,
		MaxAge:     c.MaxAge,
		MaxBytes:   c.MaxBytes,
		MaxMsgs:    -1,
	}
}

// EnsureStream returns the stream cfg names, creating it with cfg's
// settings when it does not exist and create is true. An existing stream is
// checked, never changed: one whose subjects lack cfg.Subject, or whose
// retention, storage, replicas, duplicate window, message size or limits
// differ from cfg, is refused with ErrStreamConfig naming every difference.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, create bool) (jetstream.Stream, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) && create {
		st, err = js.CreateStream(ctx, cfg.JetStream())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created meanwhile: check it
			return EnsureStream(ctx, js, cfg, false)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ship: stream %s: %w", cfg.Name, err)
	}
	if diff := configDiff(cfg.JetStream(), st.CachedInfo().Config); diff != "" {
		return nil, fmt.Errorf("%w: stream %s exists with other settings: %s", ErrStreamConfig, cfg.Name, diff)
	}
	return st, nil
}

func configDiff(want, got jetstream.StreamConfig) string {
	var d []string
	has := false
	for _, s := range got.Subjects {
		has = has || s == want.Subjects[0]
	}
	if !has {
		d = append(d, fmt.Sprintf("subjects %v lack %s", got.Subjects, want.Subjects[0]))
	}
	if got.Retention != want.Retention {
		d = append(d, fmt.Sprintf("retention %v, want %v", got.Retention, want.Retention))
	}
	if got.Storage != want.Storage {
		d = append(d, fmt.Sprintf("storage %v, want %v", got.Storage, want.Storage))
	}
	if got.Replicas != want.Replicas {
		d = append(d, fmt.Sprintf("replicas %d, want %d", got.Replicas, want.Replicas))
	}
	if got.Duplicates != want.Duplicates {
		d = append(d, fmt.Sprintf("duplicate window %v, want %v", got.Duplicates, want.Duplicates))
	}
	if got.MaxMsgSize != want.MaxMsgSize {
		d = append(d, fmt.Sprintf("max message size %d, want %d", got.MaxMsgSize, want.MaxMsgSize))
	}
	if got.MaxAge != want.MaxAge {
		d = append(d, fmt.Sprintf("max age %v, want %v", got.MaxAge, want.MaxAge))
	}
	if got.MaxBytes != want.MaxBytes {
		d = append(d, fmt.Sprintf("max bytes %d, want %d", got.MaxBytes, want.MaxBytes))
	}
	return strings.Join(d, "; ")
}

// tail is the last message of a stream, as the shipper resumes from it.
type tail struct {
	lastSeq uint64 // the stream's last seq (what Nats-Expected-Last-Sequence must say)
	has     bool   // the stream holds a message of ours at lastSeq
	meta    Meta
	msgID   string
	data    []byte
}

// readTail asks the stream leader for its state and its last message.
func readTail(ctx context.Context, st jetstream.Stream) (tail, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return tail{}, err
	}
	t := tail{lastSeq: info.State.LastSeq}
	if info.State.Msgs == 0 {
		return t, nil
	}
	m, err := st.GetMsg(ctx, t.lastSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return t, fmt.Errorf("%w: the stream's last message (stream seq %d) was deleted: what it held cannot be known, so shipping cannot continue after it", ErrStreamConfig, t.lastSeq)
	}
	if err != nil {
		return t, err
	}
	meta, err := ParseMeta(m.Header)
	if err != nil {
		return t, fmt.Errorf("%w: the stream's last message (stream seq %d) is not a shipped journal batch: %v", ErrStreamConfig, t.lastSeq, err)
	}
	t.has, t.meta, t.msgID, t.data = true, meta, m.Header.Get(headerMsgID), m.Data
	return t, nil
}

// locate returns the stream seq from which a consumer finds seq target: the
// last message whose first seq is at most target (target lies in it, or
// after it when the stream ends before target), or the stream's first
// message when every message starts after target (the mirror then finds
// the gap). It binary-searches the stream with the leader's message-get API
// (next message on subject at or after a stream seq), so deleted messages
// are stepped over.
func locate(ctx context.Context, st jetstream.Stream, subject string, target uint64) (uint64, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs == 0 {
		return info.State.LastSeq + 1, nil
	}
	lo, hi := info.State.FirstSeq, info.State.LastSeq
	var best uint64
	for lo <= hi {
		mid := lo + (hi-lo)/2
		m, err := st.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if mid == 0 {
				break
			}
			hi = mid - 1
			continue
		}
		if err != nil {
			return 0, err
		}
		if m.Sequence > hi {
			if mid == 0 {
				break
			}
			hi = mid - 1
			continue
		}
		meta, err := ParseMeta(m.Header)
		if err != nil {
			return 0, rangeErr(ErrDamaged, target, target, m.Sequence, "looking for the message holding seq %d: %v", target, err)
		}
		if meta.First <= target {
			best, lo = m.Sequence, m.Sequence+1
		} else {
			if mid == 0 {
				break
			}
			hi = mid - 1
		}
	}
	if best == 0 {
		return info.State.FirstSeq, nil
	}
	return best, nil
}
