package e2ee_test

import (
	"errors"
	"fmt"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
)

// The producer core: one Encryptor per upload session, a new epoch at a
// Cluster start whenever RotationDue says so, the bundle as the first
// (key-track) block of every Cluster, and each frame sealed once, before it
// is buffered. The consumer: AddBundle for the key-track block, Open for
// each A/V block.
func Example() {
	device, _ := e2ee.GenerateSigningKey()              // e2ee-signing-key (LoadSigningKey)
	alice, _ := e2ee.GenerateKey(e2ee.KEMXWing)         // a consumer's key pair
	recipients := []*e2ee.PublicKey{alice.Public()}     // e2ee-recipients (LoadRecipients)
	enc, err := e2ee.NewEncryptor(e2ee.EncryptorConfig{ // e2ee-suite defaults to AES_256_GCM_SHA512_128
		Stream: "cam-1", SigningKey: device, Recipients: recipients})
	if err != nil {
		panic(err)
	}
	defer enc.Close()

	const clusterTC = 1795393128941 // ms
	if enc.RotationDue() {
		if _, err := enc.NewEpoch(clusterTC); err != nil {
			panic(err)
		}
	}
	keyBlock := enc.Bundle() // payload of the key-track SimpleBlock (relative timecode 0, flags 0x80)
	au := []byte("an access unit")
	var buf []byte
	buf, err = enc.Seal(buf, 1, true, clusterTC+0, au) // track 1, keyframe, Cluster timecode + relative timecode
	if err != nil {
		panic(err)
	}

	dec, _ := e2ee.NewDecryptor(e2ee.DecryptorConfig{
		Stream: "cam-1", Devices: []*e2ee.DeviceKey{device.Public()}, Keys: []*e2ee.PrivateKey{alice}})
	if _, err := dec.AddBundle(keyBlock); err != nil {
		panic(err)
	}
	pt, err := dec.Open(nil, 1, true, clusterTC, buf)
	fmt.Printf("%s %v\n", pt, err)
	_, err = dec.Open(nil, 1, true, clusterTC, buf)
	fmt.Println(errors.Is(err, e2ee.ErrReplay))
	fmt.Println(len(keyBlock) == e2ee.BundleSize("cam-1", recipients))
	// Output:
	// an access unit <nil>
	// true
	// true
}
