package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
)

// keygen writes a new key pair: the private key file (mode 0600, never
// overwritten) and FILE.pub (or -pub) holding the public entry to hand out
// (a recipient's to the camera's e2ee-recipients, a device's to consumers).
func keygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ExitOnError)
	kind := fs.String("kind", "x25519", "x25519 or xwing (recipient key pair), ed25519 (device signing key)")
	out := fs.String("o", "", "private key file to create; the public entry goes to FILE.pub (required)")
	pubOut := fs.String("pub", "", "public key file to write (default: FILE.pub)")
	fs.Parse(args)
	if *out == "" {
		return errors.New("keygen: -o is required")
	}
	if *pubOut == "" {
		*pubOut = *out + ".pub"
	}
	var priv []byte
	var entry, id string
	switch k := strings.ToLower(*kind); k {
	case "x25519", "xwing", "mlkem768x25519":
		kem := e2ee.KEMX25519
		if k != "x25519" {
			kem = e2ee.KEMXWing
		}
		k, err := e2ee.GenerateKey(kem)
		if err != nil {
			return err
		}
		if priv, err = k.MarshalFile(); err != nil {
			return err
		}
		entry, id = k.Public().Entry(), "recipient "+k.ID().String()
	case "ed25519":
		s, err := e2ee.GenerateSigningKey()
		if err != nil {
			return err
		}
		priv, entry, id = s.MarshalFile(), s.Public().Entry(), "device "+s.ID().String()
	default:
		return fmt.Errorf("keygen: -kind %q: want x25519, xwing or ed25519", *kind)
	}
	defer clear(priv)
	if err := e2ee.WritePrivateKeyFile(*out, priv); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := e2ee.WritePublicKeyFile(*pubOut, entry); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(stdout, "%s: wrote %s (private, 0600) and %s\n%s\n", id, *out, *pubOut, entry)
	return nil
}

// acceptV1Usage describes -accept-v1, which get and decrypt share.
const acceptV1Usage = "accept key bundles of version 1 (older kvsgo), which do not sign the segment head: timestamps and codec data are then not authenticated (reported)"

// stateUsage describes -state, which get and decrypt share.
const stateUsage = "file keeping the replay state between runs (created if missing): frames output once are refused as replays by later runs"

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func openIn(name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(name)
}

// decrypt turns an encrypted GetMedia response (kvsgo get -raw) or PutMedia
// body into plain Matroska; without -raw the segments are joined into one
// playable file, as kvsgo get does.
func decrypt(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("decrypt", flag.ExitOnError)
	stream := fs.String("stream", "", "stream name the media was read from (required; bundles for other streams are refused)")
	devices := fs.String("device", "", "pinned device public keys: ed25519:BASE64 entries or files of them, comma-separated (required)")
	var keys listFlag
	fs.Var(&keys, "key", "recipient private key file (repeatable; required)")
	in := fs.String("i", "-", "encrypted Matroska input (- for stdin)")
	out := fs.String("o", "out.mkv", "plain Matroska output")
	raw := fs.Bool("raw", false, "keep one segment per fragment instead of joining")
	strict := fs.Bool("strict", false, "fail on the first frame or bundle that does not decrypt instead of dropping it")
	state := fs.String("state", "", stateUsage)
	acceptV1 := fs.Bool("accept-v1", false, acceptV1Usage)
	fs.Parse(args)
	if *stream == "" || *devices == "" || len(keys) == 0 {
		return errors.New("decrypt: -stream, -device and -key are required")
	}
	cfg, err := decryptConfig(*stream, *devices, keys)
	if err != nil {
		return err
	}
	if err := loadState(*state, &cfg); err != nil {
		return err
	}
	cfg.AcceptV1Bundles = *acceptV1
	src, err := openIn(*in)
	if err != nil {
		return err
	}
	defer src.Close()
	f := &lazyFile{path: *out}
	rep, log, st, err := decryptTo(f, src, cfg, mkvstream.Options{Strict: *strict}, *raw, nil)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	printReport(stderr, rep, log, cfg)
	if serr := saveState(*state, rep); err == nil {
		err = serr
	}
	if err == nil && !f.created() {
		err = errNoFragments
	}
	if errors.Is(err, errNoFragments) {
		err = fmt.Errorf("%w: nothing written to %s", err, *out)
	}
	if nothingDecrypted(err) {
		f.remove()
	} else if err == nil && !*raw {
		fmt.Fprintf(stderr, "kvsgo: wrote %s: %d fragments, %d frames\n", *out, st.clusters, st.blocks)
	}
	return explain(err, log, cfg)
}

// encrypt seals a plain Matroska file for a stream, as kvssink would, for
// tests and demos.
func encrypt(args []string) error {
	fs := flag.NewFlagSet("encrypt", flag.ExitOnError)
	stream := fs.String("stream", "", "stream name the media will be written to (required)")
	signing := fs.String("signing-key", "", "device signing key file (required)")
	recipients := fs.String("recipients", "", "recipient entries (x25519:/xwing:BASE64) or files of them, comma-separated (required)")
	suite := fs.String("suite", "AES_256_GCM_SHA512_128", "SFrame cipher suite: AES_256_GCM_SHA512_128 (5) or AES_128_GCM_SHA256_128 (4)")
	in := fs.String("i", "-", "plain Matroska input (- for stdin)")
	out := fs.String("o", "encrypted.mkv", "encrypted Matroska output")
	fs.Parse(args)
	if *stream == "" || *signing == "" || *recipients == "" {
		return errors.New("encrypt: -stream, -signing-key and -recipients are required")
	}
	sk, err := e2ee.LoadSigningKey(*signing)
	if err != nil {
		return err
	}
	rs, err := e2ee.LoadRecipients(*recipients)
	if err != nil {
		return err
	}
	s, err := e2ee.ParseSuite(*suite)
	if err != nil {
		return err
	}
	enc, err := e2ee.NewEncryptor(e2ee.EncryptorConfig{Stream: *stream, Suite: s, SigningKey: sk, Recipients: rs})
	if err != nil {
		return err
	}
	defer enc.Close()
	src, err := openIn(*in)
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	err = mkvstream.Encrypt(f, src, enc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
