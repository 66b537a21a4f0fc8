package e2ee

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFilesRoundTrip(t *testing.T) {
	testKeys(t)
	dir := t.TempDir()
	for _, k := range []*PrivateKey{tX25519, tXWing} {
		data, err := k.MarshalFile()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, k.KEM().String()+".key")
		if err := WritePrivateKeyFile(path, data); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", path, fi.Mode().Perm())
		}
		if err := WritePrivateKeyFile(path, data); err == nil {
			t.Errorf("WritePrivateKeyFile overwrote %s", path)
		}
		got, err := LoadPrivateKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID() != k.ID() || got.KEM() != k.KEM() {
			t.Errorf("loaded %v, want %v", got, k)
		}
		os.Chmod(path, 0o644)
		if _, err := LoadPrivateKey(path); !errors.Is(err, ErrKeyPermissions) {
			t.Errorf("world-readable key: %v, want ErrKeyPermissions", err)
		}
		p, err := ParsePublicKey(k.Public().Entry() + " alice laptop")
		if err != nil || p.ID() != k.ID() || p.Label != "alice laptop" {
			t.Errorf("ParsePublicKey(Entry) = %v, %v", p, err)
		}
	}
	spath := filepath.Join(dir, "device.key")
	if err := WritePrivateKeyFile(spath, tDevice.MarshalFile()); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigningKey(spath)
	if err != nil || s.ID() != tDevice.ID() {
		t.Fatalf("LoadSigningKey = %v, %v", s, err)
	}
	dk, err := ParseDeviceKey(tDevice.Public().Entry())
	if err != nil || dk.ID() != tDevice.ID() {
		t.Fatalf("ParseDeviceKey = %v, %v", dk, err)
	}
	devs, err := ParseDeviceKeys("pinned", []byte("# pinned\n"+tDevice.Public().Entry()+" cam-1\n\n"+tOtherDevice.Public().Entry()+"\n"))
	if err != nil || len(devs) != 2 {
		t.Fatalf("ParseDeviceKeys = %v, %v", devs, err)
	}

	// Recipients: a file and inline entries, mixed.
	rpath := filepath.Join(dir, "recipients")
	if err := WritePublicKeyFile(rpath, "# team", tX25519.Public().Entry()+" alice", tXWing.Public().Entry()+"\tbob"); err != nil {
		t.Fatal(err)
	}
	rs, err := LoadRecipients(rpath + ", " + tOutsider.Public().Entry())
	if err != nil || len(rs) != 3 || rs[0].Label != "alice" || rs[1].Label != "bob" || rs[1].KEM() != KEMXWing {
		t.Fatalf("LoadRecipients = %v, %v", rs, err)
	}
	if _, err := LoadRecipients(rpath + "," + tX25519.Public().Entry()); !errors.Is(err, ErrKeyFormat) {
		t.Errorf("duplicate recipient: %v", err)
	}
	if _, err := LoadRecipients(" , "); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("empty recipients: %v", err)
	}
	if _, err := LoadRecipients(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("missing file: %v", err)
	}
}

func TestRecipientIDs(t *testing.T) {
	testKeys(t)
	p := tX25519.Public()
	if s := p.ID().String(); len(s) != 16 || strings.Trim(s, "0123456789abcdef") != "" {
		t.Errorf("recipient id %q is not 16 hex digits", s)
	}
	if tX25519.ID() == tXWing.ID() || tDevice.ID() == tOtherDevice.ID() {
		t.Error("ids collide")
	}
	// The id is derived from the key, so it is stable across parses.
	q, _ := ParsePublicKey(p.Entry())
	if q.ID() != p.ID() {
		t.Error("id changed across a parse")
	}
}

func TestBadKeys(t *testing.T) {
	testKeys(t)
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	x := tX25519.Public().Entry()
	priv, _ := tX25519.MarshalFile()
	for _, c := range []struct {
		name, in string
		want     error
		mention  string
	}{
		{"no colon", "x25519", ErrKeyFormat, "KIND:BASE64"},
		{"unknown kind", "rsa:" + b64(32), ErrKeyKind, `"rsa"`},
		{"bad base64", "x25519:!!!", ErrKeyFormat, "base64"},
		{"unpadded base64", "x25519:" + strings.TrimRight(b64(32), "="), ErrKeyFormat, "base64"},
		{"short x25519", "x25519:" + b64(31), ErrKeyFormat, "x25519"},
		{"short xwing", "xwing:" + b64(32), ErrKeyFormat, "xwing"},
		{"device key as recipient", tDevice.Public().Entry(), ErrKeyKind, "ed25519"},
		{"private key as recipient", secretLine(priv), ErrKeyKind, "x25519-private"},
	} {
		_, err := ParsePublicKey(c.in)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: ParsePublicKey err = %v, want %v mentioning %q", c.name, err, c.want, c.mention)
		}
	}
	if _, err := ParseDeviceKey(x); !errors.Is(err, ErrKeyKind) {
		t.Errorf("recipient as device key: %v", err)
	}
	if _, err := ParseDeviceKey("ed25519:" + b64(31)); !errors.Is(err, ErrKeyFormat) {
		t.Errorf("short device key: %v", err)
	}
	for _, c := range []struct {
		name, in string
		want     error
	}{
		{"empty file", "# nothing\n", ErrKeyFormat},
		{"two keys", string(priv) + string(priv), ErrKeyFormat},
		{"public key", x + "\n", ErrKeyKind},
		{"signing key as recipient key", string(tDevice.MarshalFile()), ErrKeyKind},
		{"label after a secret", strings.TrimSpace(string(priv)) + " label\n", ErrKeyFormat},
		{"bad xwing seed", "xwing-private:" + b64(31) + "\n", ErrKeyFormat},
		{"garbage", "hello world\n", ErrKeyFormat},
	} {
		if _, err := ParsePrivateKey("k", []byte(c.in)); !errors.Is(err, c.want) || !strings.HasPrefix(err.Error(), "k") {
			t.Errorf("%s: ParsePrivateKey err = %v, want %v naming the file", c.name, err, c.want)
		}
	}
	for _, c := range []struct {
		name, in string
		want     error
	}{
		{"recipient key", string(priv), ErrKeyKind},
		{"short seed", "ed25519-private:" + b64(31) + "\n", ErrKeyFormat},
		{"not base64", "ed25519-private:zz\n", ErrKeyFormat},
	} {
		if _, err := ParseSigningKey("device.key", []byte(c.in)); !errors.Is(err, c.want) || !strings.Contains(err.Error(), "device.key") {
			t.Errorf("%s: ParseSigningKey err = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := ParsePublicKeys("r", []byte(x+"\nbogus\n")); err == nil || !strings.Contains(err.Error(), "r line 2") {
		t.Errorf("recipients file error does not name the line: %v", err)
	}
	if _, err := GenerateKey(KEM(0x10)); !errors.Is(err, ErrKeyKind) {
		t.Errorf("GenerateKey(P-256): %v", err)
	}
}

// TestNoSecretsInText: no secret reaches String, %v/%+v/%#v or an error.
func TestNoSecretsInText(t *testing.T) {
	testKeys(t)
	var secrets []string
	addSecret := func(b []byte) {
		goSyntax := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", b), "[]byte{"), "}")
		secrets = append(secrets, hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
			strings.Trim(fmt.Sprint(b), "[]"), goSyntax)
	}
	for _, k := range []*PrivateKey{tX25519, tXWing} {
		b, _ := k.sk.Bytes()
		addSecret(b)
	}
	addSecret(tDevice.sk.Seed())
	e := testEncryptor(t, "cam-1")
	bundle, _ := e.NewEpoch(0)
	addSecret(e.epoch.secret)
	base, _ := DeriveBaseKey(e.epoch.secret, "cam-1", e.Epoch().ID, 1, DefaultSuite)
	addSecret(base)
	sk, salt, _ := deriveKeySalt(DefaultSuite, base, KID(e.Epoch().ID, 1))
	addSecret(sk)
	addSecret(salt)
	k, _ := NewKey(DefaultSuite, base, KID(e.Epoch().ID, 1))
	d, _ := testDecryptor(t, "cam-1")
	d.AddBundle(bundle)

	var texts []string
	for _, v := range []any{tX25519, tXWing, tDevice, e, d, k, e.Epoch(), *k, *tX25519, *tDevice, *e, *d, []any{k, tDevice}} {
		texts = append(texts, fmt.Sprint(v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), fmt.Sprintf("%s", v), fmt.Sprintf("%d", v), fmt.Sprintf("%x", v))
	}
	privFile, _ := tX25519.MarshalFile()
	badFile := strings.Replace(string(privFile), "x25519-private:", "x25519-private:!", 1)
	_, err1 := ParsePrivateKey("f", []byte(badFile))
	_, err2 := ParsePrivateKey("f", []byte(strings.TrimSpace(string(privFile))+" extra"))
	_, err3 := ParsePrivateKey("f", append(privFile, privFile...))
	_, err4 := ParseSigningKey("f", privFile)
	_, err5 := ParsePublicKeys("f", privFile)
	_, err6 := ParseDeviceKey(secretLine(tDevice.MarshalFile()))
	p, _ := e.Seal(nil, 1, true, 0, []byte("frame"))
	_, err7 := d.Open(nil, 1, false, 0, p)
	for _, err := range []error{err1, err2, err3, err4, err5, err6, err7} {
		if err == nil {
			t.Fatal("expected an error")
		}
		texts = append(texts, err.Error())
	}
	for _, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("secret material in %q", text)
			}
		}
	}
}

// secretLine returns the key line of a private key file.
func secretLine(file []byte) string {
	lines := strings.Split(strings.TrimSpace(string(file)), "\n")
	return lines[len(lines)-1]
}

func TestLoadDeviceKeys(t *testing.T) {
	testKeys(t)
	path := filepath.Join(t.TempDir(), "devices")
	if err := WritePublicKeyFile(path, tDevice.Public().Entry()+" cam-1"); err != nil {
		t.Fatal(err)
	}
	ds, err := LoadDeviceKeys(path + "," + tOtherDevice.Public().Entry())
	if err != nil || len(ds) != 2 || ds[0].ID() != tDevice.ID() || ds[1].ID() != tOtherDevice.ID() {
		t.Fatalf("LoadDeviceKeys = %v, %v", ds, err)
	}
	if _, err := LoadDeviceKeys(tX25519.Public().Entry()); !errors.Is(err, ErrKeyKind) {
		t.Errorf("recipient key as device key: %v", err)
	}
	if _, err := LoadDeviceKeys(""); !errors.Is(err, ErrKeyFormat) {
		t.Errorf("empty: %v", err)
	}
}
