package e2ee

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// KVS-E2EE v1 sizes and limits (SPEC.md §3, §6).
const (
	// EpochSecretSize is the length of an epoch secret E.
	EpochSecretSize = 32
	// BaseKeySize is the length of a per-track base_key.
	BaseKeySize = 32
	// MetadataLen is the length of the SFrame metadata of a frame (SPEC.md §6.1).
	MetadataLen = 16
	// MaxTrack is the highest track number a KID can carry (4 bits).
	MaxTrack = 15
	// MaxCounter is the highest CTR an epoch uses per track; Seal fails with
	// ErrCounterExhausted beyond it and RotationDue reports true well before.
	MaxCounter = 1<<32 - 1
	// MaxStreamName is the longest stream name (KVS allows 256 characters;
	// the bundle's L16 could hold more).
	MaxStreamName = 1024
)

// KID returns the SFrame KID of a track in an epoch: epoch_id << 4 | track.
func KID(epochID uint32, track uint8) uint64 { return uint64(epochID)<<4 | uint64(track&0xf) }

// DeriveBaseKey is the key schedule of SPEC.md §3:
//
//	base_key = HKDF-SHA256(salt = "KVS-E2EE/1 epoch", IKM = E,
//	    info = "KVS-E2EE/1 base_key" || L16(stream) || BE32(epoch_id) || u8(t) || BE16(suite), L = 32)
//
// The result is a secret; clear it after use.
func DeriveBaseKey(epochSecret []byte, stream string, epochID uint32, track uint8, suite Suite) ([]byte, error) {
	if len(epochSecret) != EpochSecretSize {
		return nil, fmt.Errorf("%w: epoch secret of %d bytes, want %d", ErrKeySize, len(epochSecret), EpochSecretSize)
	}
	if len(stream) > MaxStreamName {
		return nil, fmt.Errorf("e2ee: stream name of %d bytes longer than %d", len(stream), MaxStreamName)
	}
	if track == 0 || track > MaxTrack {
		return nil, fmt.Errorf("%w: %d", ErrTrack, track)
	}
	info := make([]byte, 0, 19+2+len(stream)+4+1+2)
	info = append(info, "KVS-E2EE/1 base_key"...)
	info = appendL16(info, []byte(stream))
	info = binary.BigEndian.AppendUint32(info, epochID)
	info = append(info, track)
	info = binary.BigEndian.AppendUint16(info, uint16(suite))
	return hkdf.Key(sha256.New, epochSecret, []byte("KVS-E2EE/1 epoch"), string(info), BaseKeySize)
}

// AppendMetadata appends the 16-byte SFrame metadata of a frame (SPEC.md §6.1):
//
//	"KVS1" || u8 track || u8 flags (0x80 if keyframe) || 0x0000 || BE64 pts
//
// pts is the Cluster Timecode plus the SimpleBlock's relative timecode, in
// TimestampScale units, as written by the producer.
func AppendMetadata(dst []byte, track uint8, keyframe bool, pts uint64) []byte {
	var flags byte
	if keyframe {
		flags = 0x80
	}
	dst = append(dst, 'K', 'V', 'S', '1', track, flags, 0, 0)
	return binary.BigEndian.AppendUint64(dst, pts)
}

func appendL16(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}
