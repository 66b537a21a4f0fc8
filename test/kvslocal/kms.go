package kvslocal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Encryption at rest, by envelope encryption as KVS does it with KMS:
//
//   - a master key (32 random bytes, hex, in Config.MasterKeyFile; by
//     default <Dir>.master-key, a file beside the data directory, never in
//     it) seals the key material of the local KMS's keys in Dir/kms.json;
//   - each KMS key (ID a UUID, ARN arn:aws:kms:REGION:ACCOUNT:key/UUID,
//     aliases alias/NAME, the AWS-managed alias/aws/kinesisvideo created on
//     first use) has one key version per rotation; old versions stay for
//     decryption;
//   - each fragment gets a fresh 32-byte data key, wrapped with the current
//     version of the stream's key (KmsKeyId) and stored wrapped in the
//     fragment's index record; the fragment is sealed with it, AES-256-GCM,
//     in records (seal.go).
//
// So Dir alone holds no fragment plaintext and no usable key. A key that is
// disabled, pending deletion or missing makes PutMedia answer with the
// KMS ERROR acks (4501, 4505, 4506) and GetMedia end with an error chunk of
// the same ErrorId.

// KMS error IDs, as ERROR acks and GetMedia error chunks carry them
// (kvssink.md §4.3).
const (
	errKMSAccessDenied = 4500
	errKMSDisabled     = 4501
	errKMSValidation   = 4502
	errKMSUnavailable  = 4503
	errKMSInvalidUsage = 4504
	errKMSInvalidState = 4505
	errKMSNotFound     = 4506
)

func init() {
	for id, c := range map[int]string{
		errKMSAccessDenied: "KMS_KEY_ACCESS_DENIED", errKMSDisabled: "KMS_KEY_DISABLED", errKMSValidation: "KMS_KEY_VALIDATION_ERROR",
		errKMSUnavailable: "KMS_KEY_UNAVAILABLE", errKMSInvalidUsage: "KMS_KEY_INVALID_USAGE", errKMSInvalidState: "KMS_KEY_INVALID_STATE",
		errKMSNotFound: "KMS_KEY_NOT_FOUND",
	} {
		errorCodes[id] = c
	}
}

// Key states, as KMS names them.
const (
	KeyEnabled         = "Enabled"
	KeyDisabled        = "Disabled"
	KeyPendingDeletion = "PendingDeletion"
)

// DefaultKMSAlias is the AWS-managed key streams use without a KmsKeyId.
const DefaultKMSAlias = "alias/aws/kinesisvideo"

// KMSError is a key that cannot be used; ID is the ErrorId the service
// reports for it (4500–4506).
type KMSError struct {
	ID  int
	Key string
	Msg string
}

func (e *KMSError) Error() string {
	return fmt.Sprintf("kvslocal: KMS key %s: %s (%d)", e.Key, e.Msg, e.ID)
}

// KeyInfo describes a key of the local KMS.
type KeyInfo struct {
	KeyID    string
	ARN      string
	State    string // KeyEnabled, KeyDisabled or KeyPendingDeletion
	Versions int    // key versions (1 + rotations)
	Aliases  []string
	// Description, Created and (for a key pending deletion) DeletionDate,
	// as DescribeKey returns them.
	Description  string
	Created      time.Time
	DeletionDate time.Time
}

// kmsKey is a key as kms.json stores it.
type kmsKey struct {
	ID          string    `json:"id"`
	Description string    `json:"description,omitempty"`
	State       string    `json:"state"`
	Created     time.Time `json:"created"`
	// DeletionDate is when a key pending deletion goes.
	DeletionDate time.Time `json:"deletionDate,omitzero"`
	Versions     []string  `json:"versions"` // key material sealed with the master key, hex
	material     [][]byte
}

type kmsFile struct {
	Keys    []*kmsKey         `json:"keys"`
	Aliases map[string]string `json:"aliases"`
}

// KMS is the endpoint's key store (Server.KMS).
type KMS struct {
	mu              sync.Mutex
	path            string
	master          cipher.AEAD
	region, account string
	now             func() time.Time
	keys            map[string]*kmsKey
	aliases         map[string]string // "alias/NAME" → key ID
}

// wrappedKey is a fragment's data key, wrapped (in the index record).
type wrappedKey struct {
	KeyID   string `json:"keyId"`
	Version int    `json:"version"` // from 1
	Sealed  []byte `json:"sealed"`  // nonce ‖ AES-256-GCM(data key)
}

const masterKeySize = 32

// loadMasterKey reads the master key file, or creates it (0600) when it
// does not exist and there is nothing sealed under another key yet.
func loadMasterKey(path string, haveKeys bool) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if haveKeys {
			return nil, fmt.Errorf("kvslocal: the master key file %s is missing: the stored keys and fragments cannot be opened without it", path)
		}
		key := make([]byte, masterKeySize)
		rand.Read(key)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("kvslocal: master key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("kvslocal: master key: %w", err)
		}
		_, err = f.Write([]byte(hex.EncodeToString(key) + "\n"))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("kvslocal: master key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kvslocal: master key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != masterKeySize {
		return nil, fmt.Errorf("kvslocal: the master key file %s does not hold %d hex-encoded bytes", path, masterKeySize)
	}
	return key, nil
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // keys are always 32 bytes here
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// sealRandom seals pt with a random nonce: nonce ‖ ciphertext.
func sealRandom(aead cipher.AEAD, pt, aad []byte) []byte {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(pt)+aead.Overhead())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, pt, aad)
}

func openRandom(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("sealed value too short")
	}
	return aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], aad)
}

func materialAAD(id string, version int) []byte {
	return []byte("kvslocal kms key material\x00" + id + "\x00" + strconv.Itoa(version))
}

func dataKeyAAD(id string, version int) []byte {
	return []byte("kvslocal data key\x00" + id + "\x00" + strconv.Itoa(version))
}

// openKMS loads Dir/kms.json with the master key in masterPath.
func openKMS(dir, masterPath, region, account string, now func() time.Time) (*KMS, error) {
	k := &KMS{path: filepath.Join(dir, "kms.json"), region: region, account: account, now: now,
		keys: map[string]*kmsKey{}, aliases: map[string]string{}}
	b, err := os.ReadFile(k.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("kvslocal: %w", err)
	}
	master, err := loadMasterKey(masterPath, err == nil)
	if err != nil {
		return nil, err
	}
	k.master = newGCM(master)
	if b == nil {
		return k, nil
	}
	var f kmsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("kvslocal: %s: %w", k.path, err)
	}
	for _, key := range f.Keys {
		for v, s := range key.Versions {
			sealed, err := hex.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("kvslocal: %s: key %s: %w", k.path, key.ID, err)
			}
			m, err := openRandom(k.master, sealed, materialAAD(key.ID, v+1))
			if err != nil {
				return nil, fmt.Errorf("kvslocal: the key material in %s does not open with the master key in %s (a different master key?)", k.path, masterPath)
			}
			key.material = append(key.material, m)
		}
		k.keys[key.ID] = key
	}
	for a, id := range f.Aliases {
		k.aliases[a] = id
	}
	return k, nil
}

// save writes kms.json. Called with k.mu held.
func (k *KMS) save() error {
	f := kmsFile{Aliases: k.aliases}
	for _, key := range k.keys {
		f.Keys = append(f.Keys, key)
	}
	sort.Slice(f.Keys, func(i, j int) bool { return f.Keys[i].ID < f.Keys[j].ID })
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	return writeFileSync(k.path, b)
}

func (k *KMS) arn(id string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", k.region, k.account, id)
}

// addVersion adds fresh key material. Called with k.mu held.
func (k *KMS) addVersion(key *kmsKey) {
	m := make([]byte, 32)
	rand.Read(m)
	key.material = append(key.material, m)
	key.Versions = append(key.Versions, hex.EncodeToString(sealRandom(k.master, m, materialAAD(key.ID, len(key.material)))))
}

func (k *KMS) createLocked(description string) *kmsKey {
	key := &kmsKey{ID: newRequestID(), Description: description, State: KeyEnabled, Created: k.now()}
	k.addVersion(key)
	k.keys[key.ID] = key
	return key
}

func (k *KMS) info(key *kmsKey) KeyInfo {
	ki := KeyInfo{KeyID: key.ID, ARN: k.arn(key.ID), State: key.State, Versions: len(key.material),
		Description: key.Description, Created: key.Created, DeletionDate: key.DeletionDate}
	for a, id := range k.aliases {
		if id == key.ID {
			ki.Aliases = append(ki.Aliases, a)
		}
	}
	sort.Strings(ki.Aliases)
	return ki
}

// CreateKey creates an enabled symmetric key.
func (k *KMS) CreateKey(description string) (KeyInfo, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := k.createLocked(description)
	if err := k.save(); err != nil {
		delete(k.keys, key.ID)
		return KeyInfo{}, fmt.Errorf("kvslocal: storing the key: %w", err)
	}
	return k.info(key), nil
}

// CreateAlias points alias ("alias/NAME"; alias/aws/ is reserved) at a key.
func (k *KMS) CreateAlias(alias, keyRef string) error {
	if !strings.HasPrefix(alias, "alias/") || strings.HasPrefix(alias, "alias/aws/") || len(alias) <= len("alias/") {
		return fmt.Errorf("kvslocal: alias %q must be alias/NAME, not under alias/aws/", alias)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.aliases[alias]; ok {
		return fmt.Errorf("kvslocal: alias %s already exists", alias)
	}
	key, kerr := k.resolveLocked(keyRef, false)
	if kerr != nil {
		return kerr
	}
	k.aliases[alias] = key.ID
	return k.save()
}

// DescribeKey returns a key by ID, key ARN, alias or alias ARN.
func (k *KMS) DescribeKey(ref string) (KeyInfo, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, kerr := k.resolveLocked(ref, false)
	if kerr != nil {
		return KeyInfo{}, kerr
	}
	return k.info(key), nil
}

// DisableKey, EnableKey and ScheduleKeyDeletion change a key's state;
// RotateKey adds a key version used from now on (old ones still decrypt);
// DeleteKey removes a key and its material: what it protected is lost.
func (k *KMS) DisableKey(ref string) error {
	return k.change(ref, func(key *kmsKey) { key.State = KeyDisabled })
}
func (k *KMS) EnableKey(ref string) error {
	return k.change(ref, func(key *kmsKey) { key.State = KeyEnabled })
}
func (k *KMS) ScheduleKeyDeletion(ref string) error {
	return k.change(ref, func(key *kmsKey) { key.State = KeyPendingDeletion })
}
func (k *KMS) RotateKey(ref string) error { return k.change(ref, k.addVersion) }
func (k *KMS) DeleteKey(ref string) error {
	return k.change(ref, func(key *kmsKey) {
		delete(k.keys, key.ID)
		for a, id := range k.aliases {
			if id == key.ID {
				delete(k.aliases, a)
			}
		}
	})
}

func (k *KMS) change(ref string, fn func(*kmsKey)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, kerr := k.resolveLocked(ref, false)
	if kerr != nil {
		return kerr
	}
	fn(key)
	return k.save()
}

// resolveLocked finds a key by ID, key ARN, alias name or alias ARN; the
// default alias gets its AWS-managed key on first use when create is set.
func (k *KMS) resolveLocked(ref string, create bool) (*kmsKey, *KMSError) {
	name := ref
	prefix := fmt.Sprintf("arn:aws:kms:%s:%s:", k.region, k.account)
	if strings.HasPrefix(ref, "arn:") {
		if !strings.HasPrefix(ref, prefix) {
			return nil, &KMSError{ID: errKMSNotFound, Key: ref, Msg: "not a key of this region and account"}
		}
		name = strings.TrimPrefix(ref, prefix)
	}
	var id string
	switch {
	case strings.HasPrefix(name, "alias/"):
		id = k.aliases[name]
		if id == "" && name == DefaultKMSAlias && create {
			key := k.createLocked("Default key that protects my Kinesis Video data when no other key is defined")
			k.aliases[name] = key.ID
			if err := k.save(); err != nil {
				delete(k.keys, key.ID)
				delete(k.aliases, name)
				return nil, &KMSError{ID: errKMSUnavailable, Key: ref, Msg: "could not store the key"}
			}
			id = key.ID
		}
	case strings.HasPrefix(name, "key/"):
		id = strings.TrimPrefix(name, "key/")
	case !strings.HasPrefix(ref, "arn:"):
		id = name
	}
	key := k.keys[id]
	if key == nil {
		return nil, &KMSError{ID: errKMSNotFound, Key: ref, Msg: "not found"}
	}
	return key, nil
}

// usable reports why key cannot be used, if it cannot.
func usable(key *kmsKey, ref string) *KMSError {
	switch key.State {
	case KeyEnabled:
		return nil
	case KeyDisabled:
		return &KMSError{ID: errKMSDisabled, Key: ref, Msg: "disabled"}
	default:
		return &KMSError{ID: errKMSInvalidState, Key: ref, Msg: "in state " + key.State}
	}
}

// newDataKey returns a fresh data key and it wrapped with the current
// version of ref's key.
func (k *KMS) newDataKey(ref string) ([]byte, *wrappedKey, *KMSError) {
	if ref == "" {
		ref = DefaultKMSAlias
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, kerr := k.resolveLocked(ref, true)
	if kerr != nil {
		return nil, nil, kerr
	}
	if kerr := usable(key, ref); kerr != nil {
		return nil, nil, kerr
	}
	dk := make([]byte, 32)
	rand.Read(dk)
	v := len(key.material)
	return dk, &wrappedKey{KeyID: key.ID, Version: v, Sealed: sealRandom(newGCM(key.material[v-1]), dk, dataKeyAAD(key.ID, v))}, nil
}

// openDataKey unwraps a fragment's data key.
func (k *KMS) openDataKey(w *wrappedKey) ([]byte, *KMSError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := k.keys[w.KeyID]
	if key == nil {
		return nil, &KMSError{ID: errKMSNotFound, Key: w.KeyID, Msg: "not found"}
	}
	if kerr := usable(key, w.KeyID); kerr != nil {
		return nil, kerr
	}
	if w.Version < 1 || w.Version > len(key.material) {
		return nil, &KMSError{ID: errKMSInvalidState, Key: w.KeyID, Msg: "no such key version"}
	}
	dk, err := openRandom(newGCM(key.material[w.Version-1]), w.Sealed, dataKeyAAD(w.KeyID, w.Version))
	if err != nil {
		return nil, &KMSError{ID: errKMSValidation, Key: w.KeyID, Msg: "the data key does not open"}
	}
	return dk, nil
}

// KMS returns the endpoint's key store.
func (s *Server) KMS() *KMS { return s.kms }

// recordNonce is the nonce of a fragment record: 4 zero bytes and the
// record's index, big-endian. Each fragment has its own data key, so a
// nonce never repeats under a key.
func recordNonce(i uint64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], i)
	return n
}
