package sink

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// Fragment metadata limits of Kinesis Video Streams.
const (
	MaxMetadataPerFragment = 10
	MaxMetadataNameLen     = 128
	MaxMetadataValueLen    = 256
)

// ErrMetadata is wrapped by every rejected metadata item.
var ErrMetadata = errors.New("sink: fragment metadata rejected")

// PutMetadata adds a name/value tag to the next fragment (the official
// kvs-add-metadata event). A persistent tag is repeated on every fragment
// until it is put again; an empty persistent value removes it. The service's
// limits are enforced here, so a bad tag is an error naming the limit, never
// a fragment the service rejects.
func (s *Sink) PutMetadata(name, value string, persist bool) error {
	switch {
	case name == "" || len(name) > MaxMetadataNameLen:
		return fmt.Errorf("%w: name %q must be 1 to %d bytes", ErrMetadata, name, MaxMetadataNameLen)
	case strings.HasPrefix(strings.ToUpper(name), "AWS"):
		return fmt.Errorf("%w: name %q: names starting with AWS are reserved", ErrMetadata, name)
	case len(value) > MaxMetadataValueLen:
		return fmt.Errorf("%w: value of %q is %d bytes, at most %d", ErrMetadata, name, len(value), MaxMetadataValueLen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if persist {
		if s.persistent == nil {
			s.persistent = map[string]string{}
		}
		_, had := s.persistent[name]
		if value == "" {
			delete(s.persistent, name)
		} else {
			if !had && s.builder.PendingTags() >= MaxMetadataPerFragment {
				return fmt.Errorf("%w: %q would be tag %d of the next fragment; at most %d", ErrMetadata, name, s.builder.PendingTags()+1, MaxMetadataPerFragment)
			}
			s.persistent[name] = value
		}
		names := make([]string, 0, len(s.persistent))
		for n := range s.persistent {
			names = append(names, n)
		}
		sort.Strings(names)
		tags := make([]mkv.SimpleTag, 0, len(names))
		for _, n := range names {
			tags = append(tags, mkv.SimpleTag{Name: n, Value: s.persistent[n]})
		}
		s.builder.SetPersistentTags(tags)
		return nil
	}
	if s.builder.PendingTags() >= MaxMetadataPerFragment {
		return fmt.Errorf("%w: %q would be tag %d of the next fragment; at most %d", ErrMetadata, name, s.builder.PendingTags()+1, MaxMetadataPerFragment)
	}
	s.builder.AddTags(mkv.SimpleTag{Name: name, Value: value})
	return nil
}
