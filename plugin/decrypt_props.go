package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
)

// decryptSettings are kvsdecrypt's properties. They are read when a stream
// starts (the first buffer after start or a flush).
type decryptSettings struct {
	privateKeys string // comma-separated recipient private key files
	deviceKeys  string // comma-separated device public key files or inline keys
	streamName  string // the stream the input was read from
	stateFile   string // replay state kept between runs, or ""
}

var decryptProps = []struct {
	name, nick, blurb string
	field             func(*decryptSettings) *string
}{
	{"private-keys", "Private keys", "Comma-separated paths of this consumer's recipient private key files (X25519 or ML-KEM-768+X25519), as written by `kvsgo keygen`",
		func(s *decryptSettings) *string { return &s.privateKeys }},
	{"device-keys", "Device keys", "Comma-separated device public signing keys to trust (files or inline \"ed25519:...\" entries): only key bundles signed by one of them are accepted",
		func(s *decryptSettings) *string { return &s.deviceKeys }},
	{"stream-name", "Stream name", "The Kinesis Video stream the input was read from; frames encrypted for another stream are rejected",
		func(s *decryptSettings) *string { return &s.streamName }},
	{"state-file", "Replay state file", "Path of a file keeping the replay state between runs (created if missing, written when a stream ends; no secret in it): frames output once are refused as replays by later runs. Default: none, each run starts afresh",
		func(s *decryptSettings) *string { return &s.stateFile }},
}

func decryptParamSpecs() []*glib.ParamSpec {
	flags := glib.ParameterReadWrite | glib.ParameterFlags(gst.ParameterMutableReady)
	out := make([]*glib.ParamSpec, len(decryptProps))
	for i, p := range decryptProps {
		out[i] = glib.NewStringParam(p.name, p.nick, p.blurb, nil, flags)
	}
	return out
}

func (d *decryptElement) SetProperty(_ *glib.Object, id uint, value *glib.Value) {
	defer d.msg().recoverPanic("kvsdecrypt set_property", nil)
	if int(id) >= len(decryptProps) {
		return
	}
	s, _ := value.GetString()
	d.mu.Lock()
	*decryptProps[id].field(&d.settings) = s
	d.mu.Unlock()
}

func (d *decryptElement) GetProperty(_ *glib.Object, id uint) *glib.Value {
	defer d.msg().recoverPanic("kvsdecrypt get_property", nil)
	if int(id) >= len(decryptProps) {
		return nil
	}
	d.mu.Lock()
	s := *decryptProps[id].field(&d.settings)
	d.mu.Unlock()
	if s == "" {
		v, _ := glib.ValueInit(glib.TYPE_STRING)
		return v
	}
	v, _ := glib.GValue(s)
	return v
}

// mismatchFrames is how many frames must fail authentication, with valid
// key bundles and no frame opened, before kvsdecrypt declares a context
// mismatch (rewritten timecodes, another stream): two seconds at 30 fps.
const mismatchFrames = 60

// transform loads the keys and returns the decryption of one stream, which
// reports problems through report.
func (s decryptSettings) transform(report func(error, *mkvstream.Report) error) (func(io.Reader, io.Writer) error, error) {
	if s.streamName == "" {
		return nil, errors.New("stream-name is not set: it must name the stream the input was read from")
	}
	if s.privateKeys == "" {
		return nil, errors.New("private-keys is not set")
	}
	if s.deviceKeys == "" {
		return nil, errors.New("device-keys is not set: the device public keys to trust")
	}
	var keys []*e2ee.PrivateKey
	for _, p := range strings.Split(s.privateKeys, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		k, err := e2ee.LoadPrivateKey(p)
		if err != nil {
			return nil, fmt.Errorf("private-keys: %w", err)
		}
		keys = append(keys, k)
	}
	devs, err := e2ee.LoadDeviceKeys(s.deviceKeys)
	if err != nil {
		return nil, fmt.Errorf("device-keys: %w", err)
	}
	cfg := e2ee.DecryptorConfig{Stream: s.streamName, Devices: devs, Keys: keys}
	if s.stateFile != "" {
		if cfg.State, err = e2ee.LoadStateFile(s.stateFile); err != nil {
			return nil, fmt.Errorf("state-file: %w", err)
		}
	}
	return func(r io.Reader, w io.Writer) error {
		rep, err := mkvstream.Decrypt(w, r, cfg, mkvstream.Options{Live: true, OnProblem: report, MismatchAfter: mismatchFrames})
		if s.stateFile != "" && rep != nil && rep.State != nil {
			if serr := e2ee.WriteStateFile(s.stateFile, rep.State); serr != nil && err == nil {
				err = fmt.Errorf("state-file: %w", serr)
			}
		}
		return err
	}, nil
}
