package command

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/ship"
	"github.com/mdjournal/mdjournal/wait"
)

// natsFlags are the connection flags of ship and mirror. Secrets never come
// from the command line (other users see it in ps): a password or token is
// read from NATS_PASSWORD / NATS_TOKEN, credentials and keys from files.
// Nothing printed carries a secret: the URL is shown without its user
// information.
type natsFlags struct {
	url     string
	creds   string
	nkey    string
	user    string
	tlsCA   string
	tlsCert string
	tlsKey  string
	stream  string
	subject string
}

func (o *natsFlags) addNATS(fs *pflag.FlagSet) {
	fs.StringVar(&o.url, "nats", "", "NATS server URL(s), comma-separated (nats://127.0.0.1:4222)")
	fs.StringVar(&o.stream, "stream", "", "JetStream stream name")
	fs.StringVar(&o.subject, "subject", "", "subject the frames travel on (default mdjournal.STREAM)")
	fs.StringVar(&o.creds, "creds", "", "NATS credentials file (JWT and nkey seed)")
	fs.StringVar(&o.nkey, "nkey", "", "NATS nkey seed file")
	fs.StringVar(&o.user, "user", "", "NATS user (password from the environment variable NATS_PASSWORD)")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "CA certificate file to verify the server")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "client certificate file (with --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "client private key file")
}

func (o *natsFlags) check() error {
	if strings.TrimSpace(o.url) == "" {
		return usagef("--nats URL is required")
	}
	if strings.TrimSpace(o.stream) == "" {
		return usagef("--stream NAME is required")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if o.creds != "" && o.nkey != "" {
		return usagef("--creds and --nkey are alternatives")
	}
	return nil
}

// redactURLs returns the server URLs without user information.
func redactURLs(s string) string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || p.User == nil {
			if err != nil {
				u = "(unparsable URL)"
			}
			out = append(out, strings.TrimSpace(u))
			continue
		}
		p.User = nil
		out = append(out, p.String())
	}
	return strings.Join(out, ",")
}

// connect dials NATS with the flags' credentials and TLS settings. It
// reconnects forever: ship and mirror resume after a server comes back.
func (o *natsFlags) connect(env *Env, verb string) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{
		nats.Name("journalctl " + verb),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				fmt.Fprintf(env.Stderr, "journalctl %s: disconnected: %v\n", verb, err)
			}
		}),
	}
	if o.creds != "" {
		opts = append(opts, nats.UserCredentials(o.creds))
	}
	if o.nkey != "" {
		opt, err := nats.NkeyOptionFromSeed(o.nkey)
		if err != nil {
			return nil, nil, fmt.Errorf("--nkey: %w", err)
		}
		opts = append(opts, opt)
	}
	if o.user != "" {
		opts = append(opts, nats.UserInfo(o.user, os.Getenv("NATS_PASSWORD")))
	}
	if tok := os.Getenv("NATS_TOKEN"); tok != "" {
		opts = append(opts, nats.Token(tok))
	}
	if o.tlsCA != "" {
		opts = append(opts, nats.RootCAs(o.tlsCA))
	}
	if o.tlsCert != "" {
		opts = append(opts, nats.ClientCert(o.tlsCert, o.tlsKey))
	}
	nc, err := nats.Connect(o.url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", redactURLs(o.url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

type shipOptions struct {
	natsFlags
	dir         string
	name        string
	batchBytes  string
	linger      time.Duration
	maxInFlight int
	ackTimeout  time.Duration
	from        uint64
	wait        string
	create      bool
	storage     string
	replicas    int
	duplicates  time.Duration
	maxMsgSize  string
	maxAge      time.Duration
	quiet       bool
}

func (o *shipOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "origin journal directory")
	o.addNATS(fs)
	fs.StringVar(&o.name, "name", "", "named reader the shipper follows with (default ship-STREAM)")
	fs.StringVar(&o.batchBytes, "batch-bytes", "512KiB", "frame bytes per message (at least 64KiB)")
	fs.DurationVar(&o.linger, "linger", 0, "how long a message waits for more frames (0: send as soon as the journal has nothing more)")
	fs.IntVar(&o.maxInFlight, "max-inflight", ship.DefaultMaxInFlight, "messages published and not yet acknowledged")
	fs.DurationVar(&o.ackTimeout, "ack-timeout", ship.DefaultAckTimeout, "wait this long for an acknowledgement, then resume from the stream's state")
	fs.Uint64Var(&o.from, "from-seq", 0, "first seq to ship into an empty stream (0: the origin's first frame)")
	fs.StringVar(&o.wait, "wait", "futex", "how the reader waits at the end of the journal: spin|yield|backoff|futex")
	fs.BoolVar(&o.create, "create", true, "create the stream when it does not exist (an existing one is checked, never changed)")
	fs.StringVar(&o.storage, "storage", "file", "stream storage: file|memory")
	fs.IntVar(&o.replicas, "replicas", 1, "stream replicas (1..5; a cluster of that many servers)")
	fs.DurationVar(&o.duplicates, "duplicates", ship.DefaultDuplicates, "stream duplicate window")
	fs.StringVar(&o.maxMsgSize, "max-msg-size", "1MiB", "stream max message size")
	fs.DurationVar(&o.maxAge, "max-age", 0, "stream max age (0: keep everything)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress notes on stderr")
}

func parseStorage(s string) (jetstream.StorageType, error) {
	switch s {
	case "file":
		return jetstream.FileStorage, nil
	case "memory":
		return jetstream.MemoryStorage, nil
	}
	return 0, usagef("--storage %q: want file or memory", s)
}

// runShip follows a journal and ships it to a JetStream stream until
// SIGINT/SIGTERM (exit 0) or an integrity finding (exit 1, naming the seqs).
func runShip(env *Env, args []string) error {
	var o shipOptions
	fs := flagSet(env, "ship", "--dir D --nats URL --stream NAME [--batch-bytes SIZE] [--linger DUR] [--max-inflight N] [--replicas N] [--storage file|memory] ...", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	batch, err := parseSizeFlag("--batch-bytes", o.batchBytes)
	if err != nil {
		return err
	}
	maxMsg, err := parseSizeFlag("--max-msg-size", o.maxMsgSize)
	if err != nil {
		return err
	}
	storage, err := parseStorage(o.storage)
	if err != nil {
		return err
	}
	ws, err := wait.Parse(o.wait)
	if err != nil {
		return usagef("--wait: %v", err)
	}
	switch {
	case batch < 64<<10 || batch > 64<<20:
		return usagef("--batch-bytes %s: want 64KiB to 64MiB", o.batchBytes)
	case maxMsg < batch+1024 || maxMsg > 1<<30:
		return usagef("--max-msg-size %s: must hold --batch-bytes and 1KiB of headers", o.maxMsgSize)
	case o.replicas < 1 || o.replicas > 5:
		return usagef("--replicas %d: want 1..5", o.replicas)
	case o.maxInFlight < 1 || o.maxInFlight > 1024:
		return usagef("--max-inflight %d: want 1..1024", o.maxInFlight)
	case o.linger < 0 || o.ackTimeout <= 0 || o.duplicates <= 0 || o.maxAge < 0:
		return usagef("--linger and --max-age must not be negative, --ack-timeout and --duplicates must be positive")
	}
	nc, js, err := o.connect(env, "ship")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx := env.Ctx
	cfg := ship.StreamConfig{Name: o.stream, Subject: o.subject, Storage: storage, Replicas: o.replicas,
		Duplicates: o.duplicates, MaxMsgSize: int32(maxMsg), MaxAge: o.maxAge}
	logf := func(format string, a ...any) {
		if !o.quiet {
			fmt.Fprintf(env.Stderr, "journalctl "+format+"\n", a...)
		}
	}
	// JetStream may not be available yet (a cluster electing its meta
	// leader, a server restarting): retry until it answers, or the stream
	// is refused.
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = ship.EnsureStream(sctx, js, cfg, o.create)
		cancel()
		if err == nil || errors.Is(err, ship.ErrStreamConfig) || errors.Is(err, jetstream.ErrStreamNotFound) || ctx.Err() != nil {
			break
		}
		logf("ship: stream %s: %v; retrying", o.stream, err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return err
	}
	sh, err := ship.NewShipper(o.dir, js, ship.Options{Stream: o.stream, Subject: o.subject, Name: o.name, BatchBytes: int(batch),
		Linger: o.linger, MaxInFlight: o.maxInFlight, AckTimeout: o.ackTimeout, From: o.from, Wait: ws, Logf: logf, OpenTimeout: time.Minute})
	if err != nil {
		return usagef("%v", err)
	}
	logf("ship: %s → %s stream %s", o.dir, redactURLs(o.url), o.stream)
	err = sh.Run(ctx)
	st := sh.Stats()
	fmt.Fprintf(env.Stdout, "shipped frames=%d messages=%d bytes=%d acked_seq=%d stream_seq=%d resyncs=%d\n",
		st.Frames, st.Messages, st.Bytes, st.AckedSeq, st.StreamSeq, st.Resyncs)
	var re *ship.RangeError
	if errors.As(err, &re) {
		return fmt.Errorf("stopped: %w", err)
	}
	return err
}
