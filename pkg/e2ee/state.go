package e2ee

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// DecryptorState is the replay state of a Decryptor without any secret
// (SPEC.md §7.3): per device, the latest start of an epoch it no longer
// holds, and per epoch it holds, the bundle's digest and the counter last
// accepted on each track. A consumer that saves it (Decryptor.State) and
// gives it to the next Decryptor (DecryptorConfig.State) refuses after a
// restart what it accepted before. Its JSON form is stable: MarshalJSON
// and UnmarshalJSON.
type DecryptorState struct {
	Devices []DeviceState
	Epochs  []EpochState
}

// DeviceState is one device's high-water mark.
type DeviceState struct {
	Signer SignerID
	// Forgotten is the latest first_pts of an epoch of this device that the
	// Decryptor no longer holds: bundles starting at or before it are
	// refused (ErrReplay).
	Forgotten uint64
}

// EpochState is one epoch a Decryptor held.
type EpochState struct {
	Bundle   [32]byte // SHA-256 of the key bundle
	Signer   SignerID
	EpochID  uint32
	FirstPTS uint64
	// Last[t] is the counter last accepted on track t, nil if none.
	Last [MaxTrack + 1]*uint64
}

// stateVersion is the version of the JSON form.
const stateVersion = 1

type stateJSON struct {
	Version int          `json:"version"`
	Devices []deviceJSON `json:"devices"`
	Epochs  []epochJSON  `json:"epochs"`
}

type deviceJSON struct {
	Signer    string `json:"signer"`
	Forgotten uint64 `json:"forgotten_first_pts"`
}

type epochJSON struct {
	Bundle   string           `json:"bundle_sha256"`
	Signer   string           `json:"signer"`
	EpochID  uint32           `json:"epoch_id"`
	FirstPTS uint64           `json:"first_pts"`
	Last     map[uint8]uint64 `json:"last_ctr"`
}

// MarshalJSON writes the state's stable JSON form.
func (s *DecryptorState) MarshalJSON() ([]byte, error) {
	j := stateJSON{Version: stateVersion, Devices: []deviceJSON{}, Epochs: []epochJSON{}}
	for _, d := range s.Devices {
		j.Devices = append(j.Devices, deviceJSON{Signer: d.Signer.String(), Forgotten: d.Forgotten})
	}
	for _, e := range s.Epochs {
		ej := epochJSON{Bundle: hex.EncodeToString(e.Bundle[:]), Signer: e.Signer.String(), EpochID: e.EpochID, FirstPTS: e.FirstPTS, Last: map[uint8]uint64{}}
		for t, c := range e.Last {
			if c != nil {
				ej.Last[uint8(t)] = *c
			}
		}
		j.Epochs = append(j.Epochs, ej)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the JSON form; anything else is an error naming
// what is wrong.
func (s *DecryptorState) UnmarshalJSON(b []byte) error {
	var j stateJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("e2ee: decryptor state: %w", err)
	}
	if j.Version != stateVersion {
		return fmt.Errorf("e2ee: decryptor state version %d, want %d", j.Version, stateVersion)
	}
	signer := func(h string) (SignerID, error) {
		var id SignerID
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != len(id) {
			return id, fmt.Errorf("e2ee: decryptor state: signer %q is not %d hex bytes", h, len(id))
		}
		copy(id[:], b)
		return id, nil
	}
	out := DecryptorState{}
	for _, d := range j.Devices {
		id, err := signer(d.Signer)
		if err != nil {
			return err
		}
		out.Devices = append(out.Devices, DeviceState{Signer: id, Forgotten: d.Forgotten})
	}
	for _, e := range j.Epochs {
		var es EpochState
		var err error
		if es.Signer, err = signer(e.Signer); err != nil {
			return err
		}
		h, err := hex.DecodeString(e.Bundle)
		if err != nil || len(h) != len(es.Bundle) {
			return fmt.Errorf("e2ee: decryptor state: bundle digest %q is not 32 hex bytes", e.Bundle)
		}
		copy(es.Bundle[:], h)
		es.EpochID, es.FirstPTS = e.EpochID, e.FirstPTS
		for t, c := range e.Last {
			if t < 1 || t > MaxTrack {
				return fmt.Errorf("e2ee: decryptor state: track %d outside 1..%d", t, MaxTrack)
			}
			es.Last[t] = &c
		}
		out.Epochs = append(out.Epochs, es)
	}
	*s = out
	return nil
}

// State returns the replay state to save for the next Decryptor of this
// consumer (DecryptorConfig.State). It holds no secret.
func (d *Decryptor) State() *DecryptorState {
	s := &DecryptorState{}
	for id, hw := range d.forgotten {
		s.Devices = append(s.Devices, DeviceState{Signer: id, Forgotten: hw})
	}
	slices.SortFunc(s.Devices, func(a, b DeviceState) int { return slices.Compare(a.Signer[:], b.Signer[:]) })
	for _, id := range d.order {
		ep := d.epochs[id]
		es := EpochState{Bundle: ep.hash, Signer: ep.signer, EpochID: ep.id, FirstPTS: ep.firstPTS}
		for t := range ep.seen {
			if ep.seen[t] {
				c := ep.last[t]
				es.Last[t] = &c
			}
		}
		s.Epochs = append(s.Epochs, es)
	}
	for _, es := range d.restored {
		s.Epochs = append(s.Epochs, es)
	}
	return s
}

// restore loads a saved state: the high-water marks as they were, and the
// epochs held then, whose counters apply when their bundles come again.
// Epochs beyond MaxEpochs are folded into their device's mark.
func (d *Decryptor) restore(s *DecryptorState) error {
	for _, dv := range s.Devices {
		d.forget(dv.Signer, dv.Forgotten)
	}
	eps := slices.Clone(s.Epochs)
	slices.SortStableFunc(eps, func(a, b EpochState) int {
		switch {
		case a.FirstPTS > b.FirstPTS:
			return -1
		case a.FirstPTS < b.FirstPTS:
			return 1
		}
		return 0
	})
	for i, es := range eps {
		if i >= d.cfg.MaxEpochs {
			d.forget(es.Signer, es.FirstPTS)
			continue
		}
		d.restored[es.Bundle] = es
	}
	return nil
}

// maxStateFile bounds a state file read: a Decryptor's state is a few
// kilobytes (MaxEpochs epochs, one mark per pinned device).
const maxStateFile = 1 << 20

// LoadStateFile reads a replay state file written by WriteStateFile. A file
// that does not exist yet is a first run: nil state, no error.
func LoadStateFile(path string) (*DecryptorState, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("e2ee: replay state: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return nil, fmt.Errorf("e2ee: replay state: %w", err)
	}
	if len(b) > maxStateFile {
		return nil, fmt.Errorf("e2ee: replay state %s: larger than %d bytes", path, maxStateFile)
	}
	var st DecryptorState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &st, nil
}

// WriteStateFile writes the state to path through a temporary file renamed
// over it, so that an interrupted write leaves the previous state.
func WriteStateFile(path string, st *DecryptorState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".e2ee-state-*")
	if err != nil {
		return fmt.Errorf("e2ee: replay state: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("e2ee: replay state: %w", err)
	}
	return nil
}
