package e2ee

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// KEM is an HPKE KEM identifier of a recipient key.
type KEM uint16

// The recipient key kinds.
const (
	KEMX25519 KEM = 0x0020 // DHKEM(X25519, HKDF-SHA256)
	KEMXWing  KEM = 0x647A // MLKEM768-X25519, post-quantum hybrid
)

// Sizes of keys and of the wrapped epoch secret.
const (
	X25519PublicKeySize = 32
	XWingPublicKeySize  = 1216
	X25519EncSize       = 32
	XWingEncSize        = 1120
	WrappedSecretSize   = EpochSecretSize + 16 // HPKE AES-256-GCM ciphertext of E
)

func (k KEM) String() string {
	switch k {
	case KEMX25519:
		return "x25519"
	case KEMXWing:
		return "xwing"
	}
	return fmt.Sprintf("kem(%#04x)", uint16(k))
}

func (k KEM) hpke() (hpke.KEM, bool) {
	switch k {
	case KEMX25519:
		return hpke.DHKEM(ecdh.X25519()), true
	case KEMXWing:
		return hpke.MLKEM768X25519(), true
	}
	return nil, false
}

// RecipientID identifies a recipient public key: SHA-256(BE16 kem_id ||
// public key)[:8].
type RecipientID [8]byte

func (id RecipientID) String() string { return hex.EncodeToString(id[:]) }

// SignerID identifies a device key: SHA-256(Ed25519 public key)[:8].
type SignerID [8]byte

func (id SignerID) String() string { return hex.EncodeToString(id[:]) }

// PublicKey is a recipient's HPKE public key.
type PublicKey struct {
	kem   KEM
	raw   []byte
	pk    hpke.PublicKey
	id    RecipientID
	Label string // free text from the recipients file, for messages
}

// NewPublicKey returns the recipient public key of the given kind.
func NewPublicKey(kem KEM, b []byte) (*PublicKey, error) {
	k, ok := kem.hpke()
	if !ok {
		return nil, fmt.Errorf("%w: unknown recipient key kind %v", ErrKeyKind, kem)
	}
	pk, err := k.NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: not a valid %v public key (%d bytes)", ErrKeyFormat, kem, len(b))
	}
	p := &PublicKey{kem: kem, raw: bytes.Clone(b), pk: pk}
	var pre [2]byte
	binary.BigEndian.PutUint16(pre[:], uint16(kem))
	h := sha256.Sum256(append(pre[:], b...))
	copy(p.id[:], h[:8])
	return p, nil
}

// KEM returns the key's kind.
func (p *PublicKey) KEM() KEM { return p.kem }

// ID returns the recipient id.
func (p *PublicKey) ID() RecipientID { return p.id }

// Bytes returns the serialized public key.
func (p *PublicKey) Bytes() []byte { return bytes.Clone(p.raw) }

// Entry returns the key's text form "KIND:BASE64".
func (p *PublicKey) Entry() string {
	return p.kem.String() + ":" + base64.StdEncoding.EncodeToString(p.raw)
}

// String names the key by kind, id and label.
func (p *PublicKey) String() string {
	s := p.kem.String() + " recipient " + p.id.String()
	if p.Label != "" {
		s += " (" + p.Label + ")"
	}
	return s
}

// PrivateKey is a recipient's HPKE private key. It never prints its secret.
type PrivateKey struct {
	sk  hpke.PrivateKey
	pub *PublicKey
}

// GenerateKey makes a new recipient key pair of the given kind.
func GenerateKey(kem KEM) (*PrivateKey, error) {
	k, ok := kem.hpke()
	if !ok {
		return nil, fmt.Errorf("%w: unknown recipient key kind %v", ErrKeyKind, kem)
	}
	sk, err := k.GenerateKey()
	if err != nil {
		return nil, err
	}
	return privateFromHPKE(kem, sk)
}

func privateFromHPKE(kem KEM, sk hpke.PrivateKey) (*PrivateKey, error) {
	pub, err := NewPublicKey(kem, sk.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	return &PrivateKey{sk: sk, pub: pub}, nil
}

// Public returns the public half.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// KEM returns the key's kind.
func (k *PrivateKey) KEM() KEM { return k.pub.kem }

// ID returns the recipient id of the public half.
func (k *PrivateKey) ID() RecipientID { return k.pub.id }

// String names the key without revealing it.
func (k PrivateKey) String() string {
	return k.pub.kem.String() + " private key of recipient " + k.pub.id.String()
}

// Format prints String for every verb, so that no formatting can reveal
// the key.
func (k PrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// MarshalFile returns the contents of a private key file (keep it at mode
// 0600, see WritePrivateKeyFile).
func (k *PrivateKey) MarshalFile() ([]byte, error) {
	b, err := k.sk.Bytes()
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return marshalSecret(fmt.Sprintf("kvsgo E2EE recipient private key (%v), recipient id %v.\n# Public entry: %s", k.pub.kem, k.pub.id, k.pub.Entry()),
		k.pub.kem.String()+"-private", b), nil
}

func marshalSecret(comment, kind string, b []byte) []byte {
	var out bytes.Buffer
	fmt.Fprintf(&out, "# %s\n# Keep this file secret (mode 0600).\n", comment)
	out.WriteString(kind + ":" + base64.StdEncoding.EncodeToString(b) + "\n")
	return out.Bytes()
}

// DeviceKey is a device's Ed25519 public key, pinned by consumers.
type DeviceKey struct {
	pk ed25519.PublicKey
	id SignerID
}

// NewDeviceKey wraps a 32-byte Ed25519 public key.
func NewDeviceKey(b []byte) (*DeviceKey, error) {
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: an ed25519 public key has %d bytes, got %d", ErrKeyFormat, ed25519.PublicKeySize, len(b))
	}
	d := &DeviceKey{pk: ed25519.PublicKey(bytes.Clone(b))}
	h := sha256.Sum256(b)
	copy(d.id[:], h[:8])
	return d, nil
}

// ID returns the signer id.
func (d *DeviceKey) ID() SignerID { return d.id }

// Bytes returns the 32-byte public key.
func (d *DeviceKey) Bytes() []byte { return bytes.Clone(d.pk) }

// Entry returns "ed25519:BASE64".
func (d *DeviceKey) Entry() string { return "ed25519:" + base64.StdEncoding.EncodeToString(d.pk) }

func (d *DeviceKey) String() string { return "ed25519 device " + d.id.String() }

// SigningKey is a device's Ed25519 signing key. It never prints its secret.
type SigningKey struct {
	sk  ed25519.PrivateKey
	pub *DeviceKey
}

// GenerateSigningKey makes a new device signing key.
func GenerateSigningKey() (*SigningKey, error) {
	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return signingFromSeed(sk.Seed())
}

func signingFromSeed(seed []byte) (*SigningKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: an ed25519 signing key seed has %d bytes, got %d", ErrKeyFormat, ed25519.SeedSize, len(seed))
	}
	sk := ed25519.NewKeyFromSeed(seed)
	pub, err := NewDeviceKey(sk.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &SigningKey{sk: sk, pub: pub}, nil
}

// Public returns the device public key to pin.
func (s *SigningKey) Public() *DeviceKey { return s.pub }

// ID returns the signer id.
func (s *SigningKey) ID() SignerID { return s.pub.id }

func (s SigningKey) String() string { return "ed25519 signing key of device " + s.pub.id.String() }

// Format prints String for every verb, so that no formatting can reveal
// the key.
func (s SigningKey) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// MarshalFile returns the contents of a signing key file (mode 0600).
func (s *SigningKey) MarshalFile() []byte {
	return marshalSecret(fmt.Sprintf("kvsgo E2EE device signing key, signer id %v.\n# Public entry: %s", s.pub.id, s.pub.Entry()),
		"ed25519-private", s.sk.Seed())
}

// entry is one parsed "KIND:BASE64 [label]" line.
type entry struct {
	kind  string
	data  []byte
	label string
	line  int
}

var knownKinds = map[string]bool{
	"x25519": true, "xwing": true, "mlkem768x25519": true, "ed25519": true,
	"x25519-private": true, "xwing-private": true, "mlkem768x25519-private": true, "ed25519-private": true,
}

// parseEntries splits key text into entries. Errors name the source and
// line and never quote key material.
func parseEntries(src string, text []byte) ([]entry, error) {
	var out []entry
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseEntry(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", src, i+1, err)
		}
		e.line = i + 1
		out = append(out, e)
	}
	return out, nil
}

func parseEntry(s string) (entry, error) {
	s = strings.TrimSpace(s)
	body, label, _ := strings.Cut(s, " ")
	if j := strings.IndexAny(body, "\t"); j >= 0 {
		body, label = body[:j], body[j+1:]
	}
	kind, b64, ok := strings.Cut(body, ":")
	if !ok {
		return entry{}, fmt.Errorf("%w: want KIND:BASE64 (KIND one of x25519, xwing, ed25519, x25519-private, xwing-private, ed25519-private)", ErrKeyFormat)
	}
	kind = strings.ToLower(kind)
	if !knownKinds[kind] {
		if len(kind) > 32 {
			kind = kind[:32] + "…"
		}
		return entry{}, fmt.Errorf("%w: unknown key kind %q (want x25519, xwing, ed25519, or one of them with -private)", ErrKeyKind, kind)
	}
	kind = strings.ReplaceAll(kind, "mlkem768x25519", "xwing")
	data, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return entry{}, fmt.Errorf("%w: %s key is not valid padded standard base64", ErrKeyFormat, kind)
	}
	if strings.HasSuffix(kind, "-private") && strings.TrimSpace(label) != "" {
		clear(data)
		return entry{}, fmt.Errorf("%w: %s entry followed by extra text", ErrKeyFormat, kind)
	}
	return entry{kind: kind, data: data, label: strings.TrimSpace(label)}, nil
}

// ParsePublicKey parses one recipient entry "x25519:BASE64" or
// "xwing:BASE64" (an optional label may follow after a space).
func ParsePublicKey(s string) (*PublicKey, error) {
	e, err := parseEntry(s)
	if err != nil {
		return nil, err
	}
	return publicFromEntry(e)
}

func publicFromEntry(e entry) (*PublicKey, error) {
	var kem KEM
	switch e.kind {
	case "x25519":
		kem = KEMX25519
	case "xwing":
		kem = KEMXWing
	case "ed25519":
		return nil, fmt.Errorf("%w: an ed25519 device key is not a recipient key (want x25519 or xwing)", ErrKeyKind)
	default:
		clear(e.data)
		return nil, fmt.Errorf("%w: a %s key where a recipient public key (x25519 or xwing) is expected", ErrKeyKind, e.kind)
	}
	p, err := NewPublicKey(kem, e.data)
	if err != nil {
		return nil, err
	}
	p.Label = e.label
	return p, nil
}

// ParsePublicKeys parses a recipients file: any number of x25519 and xwing
// entries. src names the input in errors (e.g. the path). Duplicate keys are
// an error.
func ParsePublicKeys(src string, text []byte) ([]*PublicKey, error) {
	es, err := parseEntries(src, text)
	if err != nil {
		return nil, err
	}
	var out []*PublicKey
	seen := map[RecipientID]bool{}
	for _, e := range es {
		p, err := publicFromEntry(e)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", src, e.line, err)
		}
		if seen[p.id] {
			return nil, fmt.Errorf("%s line %d: %w: recipient %v listed twice", src, e.line, ErrKeyFormat, p.id)
		}
		seen[p.id] = true
		out = append(out, p)
	}
	return out, nil
}

// LoadRecipients resolves the e2ee-recipients property: a comma- or
// newline-separated list whose items are inline entries ("x25519:BASE64",
// "xwing:BASE64") or paths of recipients files. It fails on an empty
// result, a duplicate, or any item that does not parse.
func LoadRecipients(spec string) ([]*PublicKey, error) {
	seen := map[RecipientID]bool{}
	out, err := loadList(spec, "e2ee-recipients", "a KIND:BASE64", ParsePublicKey, ParsePublicKeys, func(src string, p *PublicKey) error {
		if seen[p.id] {
			return fmt.Errorf("e2ee-recipients %s: %w: recipient %v listed twice", src, ErrKeyFormat, p.id)
		}
		seen[p.id] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("e2ee-recipients: %w", ErrNoRecipients)
	}
	return out, nil
}

// loadList resolves a comma- or newline-separated list whose items are
// inline entries, parsed by one, or paths of files, parsed by file. check,
// if not nil, vets each key before it is added; src names its item ("item
// N" or the file's path). what and entry name the list and the entry form
// in errors.
func loadList[K any](spec, what, entry string, one func(string) (K, error), file func(string, []byte) ([]K, error), check func(src string, k K) error) ([]K, error) {
	var out []K
	add := func(src string, ks ...K) error {
		for _, k := range ks {
			if check != nil {
				if err := check(src, k); err != nil {
					return err
				}
			}
			out = append(out, k)
		}
		return nil
	}
	for i, item := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == '\n' }) {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if kind, _, ok := strings.Cut(item, ":"); ok && knownKinds[strings.ToLower(kind)] {
			k, err := one(item)
			if err != nil {
				return nil, fmt.Errorf("%s item %d: %w", what, i+1, err)
			}
			if err := add(fmt.Sprintf("item %d", i+1), k); err != nil {
				return nil, err
			}
			continue
		}
		text, err := os.ReadFile(item)
		if err != nil {
			return nil, fmt.Errorf("%s item %d: neither %s entry nor a readable file: %w", what, i+1, entry, err)
		}
		ks, err := file(item, text)
		if err != nil {
			return nil, err
		}
		if err := add(item, ks...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ParseDeviceKey parses one "ed25519:BASE64" entry.
func ParseDeviceKey(s string) (*DeviceKey, error) {
	e, err := parseEntry(s)
	if err != nil {
		return nil, err
	}
	return deviceFromEntry(e)
}

func deviceFromEntry(e entry) (*DeviceKey, error) {
	if e.kind != "ed25519" {
		clear(e.data)
		return nil, fmt.Errorf("%w: a %s key where an ed25519 device public key is expected", ErrKeyKind, e.kind)
	}
	return NewDeviceKey(e.data)
}

// LoadDeviceKeys resolves a list of pinned device keys as LoadRecipients
// does: comma- or newline-separated "ed25519:BASE64" entries or paths of
// files holding them.
func LoadDeviceKeys(spec string) ([]*DeviceKey, error) {
	out, err := loadList(spec, "device keys", "an ed25519:BASE64", ParseDeviceKey, ParseDeviceKeys, nil)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no device key given", ErrKeyFormat)
	}
	return out, nil
}

// ParseDeviceKeys parses a file of pinned device keys (ed25519 entries).
func ParseDeviceKeys(src string, text []byte) ([]*DeviceKey, error) {
	es, err := parseEntries(src, text)
	if err != nil {
		return nil, err
	}
	var out []*DeviceKey
	for _, e := range es {
		d, err := deviceFromEntry(e)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", src, e.line, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// oneSecret returns the single private entry of a key file.
func oneSecret(src string, text []byte) (entry, error) {
	es, err := parseEntries(src, text)
	if err != nil {
		return entry{}, err
	}
	if len(es) != 1 {
		for _, e := range es {
			clear(e.data)
		}
		return entry{}, fmt.Errorf("%s: %w: a private key file holds exactly one key, found %d", src, ErrKeyFormat, len(es))
	}
	return es[0], nil
}

// ParsePrivateKey parses the contents of a recipient private key file.
func ParsePrivateKey(src string, text []byte) (*PrivateKey, error) {
	e, err := oneSecret(src, text)
	if err != nil {
		return nil, err
	}
	defer clear(e.data)
	var kem KEM
	switch e.kind {
	case "x25519-private":
		kem = KEMX25519
	case "xwing-private":
		kem = KEMXWing
	default:
		return nil, fmt.Errorf("%s: %w: a %s key where a recipient private key (x25519-private or xwing-private) is expected", src, ErrKeyKind, e.kind)
	}
	k, _ := kem.hpke()
	sk, err := k.NewPrivateKey(e.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: not a valid %v private key (%d bytes)", src, ErrKeyFormat, kem, len(e.data))
	}
	return privateFromHPKE(kem, sk)
}

// ParseSigningKey parses the contents of a device signing key file.
func ParseSigningKey(src string, text []byte) (*SigningKey, error) {
	e, err := oneSecret(src, text)
	if err != nil {
		return nil, err
	}
	defer clear(e.data)
	if e.kind != "ed25519-private" {
		return nil, fmt.Errorf("%s: %w: a %s key where an ed25519-private signing key is expected", src, ErrKeyKind, e.kind)
	}
	s, err := signingFromSeed(e.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return s, nil
}

func readPrivateFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: %w (mode %#o); chmod 600 it", path, ErrKeyPermissions, fi.Mode().Perm())
	}
	return os.ReadFile(path)
}

// LoadPrivateKey reads a recipient private key file.
func LoadPrivateKey(path string) (*PrivateKey, error) {
	b, err := readPrivateFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return ParsePrivateKey(path, b)
}

// LoadSigningKey reads a device signing key file (the e2ee-signing-key
// property).
func LoadSigningKey(path string) (*SigningKey, error) {
	b, err := readPrivateFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return ParseSigningKey(path, b)
}

// WritePrivateKeyFile creates path with mode 0600 and writes data (from
// MarshalFile) to it. It never overwrites an existing file.
func WritePrivateKeyFile(path string, data []byte) error {
	return writeNew(path, data, 0o600)
}

// WritePublicKeyFile creates path with mode 0644 and writes the entries,
// one per line. It never overwrites an existing file.
func WritePublicKeyFile(path string, entries ...string) error {
	return writeNew(path, []byte(strings.Join(entries, "\n")+"\n"), 0o644)
}

func writeNew(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil { // the umask may have narrowed it; never widen a private file
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
