package kvslocal

import (
	"bufio"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A sealed fragment file (kms.go has the key hierarchy):
//
//	"KVSLSEAL"                       8-byte magic
//	record 0: the fragment's head    flag(1) ‖ length(4, big-endian) ‖ AES-256-GCM(head)
//	record 1…n: the Cluster          the same, up to sealRecordSize plaintext bytes each
//
// flag is 1 on the last record, 0 otherwise. Record i is sealed with the
// fragment's data key, nonce recordNonce(i) and additional data
// fragment number ‖ i (8 bytes) ‖ flag, so records cannot be reordered,
// moved to another fragment, or dropped at the end unnoticed.
//
// The head (EBML header … Tracks, the producer's Tags, the Cluster ID and
// its 8-byte size) is the first write to the file. It stays in memory until
// the fragment is complete, since the ingest patches the Cluster size then
// (WriteAt); its space at the start of the file is reserved. The Cluster is
// sealed in records as it streams in: a connection holds at most one
// record and the head in memory.

const (
	sealMagic      = "KVSLSEAL"
	sealRecordSize = 64 << 10
	// maxSealedRecord bounds a record on reading: the head is at most the
	// reader's header limit plus the Tags limit (ingest.go).
	maxSealedRecord  = 4 << 20
	sealHeadOverhead = len(sealMagic) + 1 + 4
)

// ErrSealedFragment reports a sealed fragment that does not open: altered,
// truncated or under another key.
var ErrSealedFragment = errors.New("kvslocal: sealed fragment does not open")

// sealer seals a fragment as the ingest writes it.
type sealer struct {
	aead    cipher.AEAD
	number  string
	wrapped *wrappedKey
	head    []byte
	headSet bool
	buf     []byte
	next    uint64 // index of the next Cluster record
}

func recordAAD(number string, i uint64, flag byte) []byte {
	aad := append([]byte(number), 0, 0, 0, 0, 0, 0, 0, 0, flag)
	binary.BigEndian.PutUint64(aad[len(number):], i)
	return aad
}

func (s *sealer) record(i uint64, flag byte, pt []byte) []byte {
	out := make([]byte, 5, 5+len(pt)+s.aead.Overhead())
	out[0] = flag
	binary.BigEndian.PutUint32(out[1:], uint32(len(pt)+s.aead.Overhead()))
	return s.aead.Seal(out, recordNonce(i), pt, recordAAD(s.number, i, flag))
}

// seal makes ff write sealed with a fresh data key. Every fragment is
// sealed: it is called before the first write, and Write, WriteAt and
// sealRest need it.
func (ff *fragmentFile) seal(dk []byte, w *wrappedKey, number string) {
	ff.sealer = &sealer{aead: newGCM(dk), number: number, wrapped: w, next: 1}
}

// dataKey is the wrapped data key the fragment is sealed with.
func (ff *fragmentFile) dataKey() *wrappedKey { return ff.sealer.wrapped }

// Write appends plaintext to the fragment.
func (ff *fragmentFile) Write(p []byte) (int, error) {
	s := ff.sealer
	if !s.headSet {
		s.head, s.headSet = append([]byte(nil), p...), true
		if _, err := ff.File.Write(make([]byte, sealHeadOverhead+len(p)+s.aead.Overhead())); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	s.buf = append(s.buf, p...)
	for len(s.buf) >= sealRecordSize {
		if _, err := ff.File.Write(s.record(s.next, 0, s.buf[:sealRecordSize])); err != nil {
			return 0, err
		}
		s.next++
		s.buf = s.buf[:copy(s.buf, s.buf[sealRecordSize:])]
	}
	return len(p), nil
}

// WriteAt patches plaintext already written, only within the head.
func (ff *fragmentFile) WriteAt(p []byte, off int64) (int, error) {
	s := ff.sealer
	if off < 0 || off+int64(len(p)) > int64(len(s.head)) {
		return 0, fmt.Errorf("kvslocal: a sealed fragment can only be patched in its head (%d bytes at %d)", len(p), off)
	}
	return copy(s.head[off:], p), nil
}

// sealRest writes the last Cluster record and the head record. commit
// calls it before the fsync.
func (ff *fragmentFile) sealRest() error {
	s := ff.sealer
	if _, err := ff.File.Write(s.record(s.next, 1, s.buf)); err != nil {
		return err
	}
	head := append([]byte(sealMagic), s.record(0, 0, s.head)...)
	_, err := ff.File.WriteAt(head, 0)
	s.buf, s.head = nil, nil
	return err
}

// openReader reads a sealed fragment's plaintext.
type openReader struct {
	r      *bufio.Reader
	c      io.Closer
	aead   cipher.AEAD
	number string
	i      uint64
	pt     []byte
	done   bool
	err    error
}

func openSealed(f io.ReadCloser, dk []byte, number string) (io.ReadCloser, error) {
	r := bufio.NewReaderSize(f, 64<<10)
	magic := make([]byte, len(sealMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != sealMagic {
		f.Close()
		return nil, fmt.Errorf("%w: fragment %s has no seal header", ErrSealedFragment, number)
	}
	return &openReader{r: r, c: f, aead: newGCM(dk), number: number}, nil
}

func (o *openReader) Read(p []byte) (int, error) {
	for len(o.pt) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			return 0, io.EOF
		}
		o.err = o.nextRecord()
	}
	n := copy(p, o.pt)
	o.pt = o.pt[n:]
	return n, nil
}

func (o *openReader) nextRecord() error {
	var h [5]byte
	if _, err := io.ReadFull(o.r, h[:]); err != nil {
		return fmt.Errorf("%w: fragment %s ends before its last record", ErrSealedFragment, o.number)
	}
	flag, n := h[0], binary.BigEndian.Uint32(h[1:])
	if flag > 1 || n < uint32(o.aead.Overhead()) || n > maxSealedRecord || (o.i == 0 && flag != 0) {
		return fmt.Errorf("%w: fragment %s record %d is malformed", ErrSealedFragment, o.number, o.i)
	}
	ct := make([]byte, n)
	if _, err := io.ReadFull(o.r, ct); err != nil {
		return fmt.Errorf("%w: fragment %s record %d is truncated", ErrSealedFragment, o.number, o.i)
	}
	pt, err := o.aead.Open(ct[:0], recordNonce(o.i), ct, recordAAD(o.number, o.i, flag))
	if err != nil {
		return fmt.Errorf("%w: fragment %s record %d fails authentication", ErrSealedFragment, o.number, o.i)
	}
	o.pt, o.i, o.done = pt, o.i+1, flag == 1
	if o.done {
		if _, err := o.r.ReadByte(); err != io.EOF {
			return fmt.Errorf("%w: fragment %s has data after its last record", ErrSealedFragment, o.number)
		}
	}
	return nil
}

func (o *openReader) Close() error { return o.c.Close() }

// openFragment opens a stored fragment's plaintext: sealed fragments are
// opened with their data key (a *KMSError when the key cannot be used),
// fragments stored before encryption at rest are read as they are.
func (s *Server) openFragment(stream string, f fragment) (io.ReadCloser, error) {
	var dk []byte
	if f.DataKey != nil {
		var kerr *KMSError
		if dk, kerr = s.decryptDataKey(f.DataKey); kerr != nil { // kmsuse.go
			return nil, kerr
		}
	}
	file, err := s.store.open(stream, f)
	if err != nil || dk == nil {
		return file, err
	}
	return openSealed(file, dk, f.Number)
}
