package e2ee

import (
	"fmt"
	"testing"
)

var benchSizes = []int{400, 5 << 10, 64 << 10}

func BenchmarkSeal(b *testing.B) {
	for _, suite := range []Suite{SuiteAES256GCM, SuiteAES128GCM} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%dB", suite, n), func(b *testing.B) {
				testKeys(b)
				e, _ := NewEncryptor(EncryptorConfig{Stream: "cam-1", Suite: suite, SigningKey: tDevice, Recipients: []*PublicKey{tX25519.Public()}})
				if _, err := e.NewEpoch(0); err != nil {
					b.Fatal(err)
				}
				pt := make([]byte, n)
				ct := make([]byte, 0, n+MaxOverhead)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					ct, _ = e.Seal(ct[:0], 1, false, uint64(i), pt)
				}
				b.ReportMetric(float64(len(ct)-n), "overhead-B/frame")
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, suite := range []Suite{SuiteAES256GCM, SuiteAES128GCM} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%dB", suite, n), func(b *testing.B) {
				testKeys(b)
				e, _ := NewEncryptor(EncryptorConfig{Stream: "cam-1", Suite: suite, SigningKey: tDevice, Recipients: []*PublicKey{tX25519.Public()}})
				bundle, _ := e.NewEpoch(0)
				d, _ := NewDecryptor(DecryptorConfig{Stream: "cam-1", Devices: []*DeviceKey{tDevice.Public()}, Keys: []*PrivateKey{tX25519}})
				if _, err := d.AddBundle(bundle); err != nil {
					b.Fatal(err)
				}
				// Pre-seal a ring of frames; Open must see increasing counters,
				// so the ring is re-sealed (outside the timer) when used up.
				const ring = 256
				pt := make([]byte, n)
				frames := make([][]byte, ring)
				pts := make([]uint64, ring)
				var next uint64
				refill := func() {
					for j := range frames {
						next++
						pts[j] = next
						frames[j], _ = e.Seal(frames[j][:0], 1, false, next, pt)
					}
				}
				refill()
				out := make([]byte, 0, n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				j := 0
				for b.Loop() {
					if j == ring {
						b.StopTimer()
						refill()
						j = 0
						b.StartTimer()
					}
					var err error
					if out, err = d.Open(out[:0], 1, false, pts[j], frames[j]); err != nil {
						b.Fatal(err)
					}
					j++
				}
			})
		}
	}
}

// BenchmarkNewEpoch measures a rotation and reports the key-track bytes per
// fragment (the bundle repeats in every Cluster) per recipient kind.
func BenchmarkNewEpoch(b *testing.B) {
	testKeys(b)
	for _, c := range []struct {
		name string
		rs   []*PublicKey
	}{
		{"x25519", []*PublicKey{tX25519.Public()}},
		{"xwing", []*PublicKey{tXWing.Public()}},
		{"x25519+xwing", []*PublicKey{tX25519.Public(), tXWing.Public()}},
	} {
		b.Run(c.name, func(b *testing.B) {
			e, _ := NewEncryptor(EncryptorConfig{Stream: "cam-1", SigningKey: tDevice, Recipients: c.rs})
			var bundle []byte
			b.ReportAllocs()
			for b.Loop() {
				bundle, _ = e.NewEpoch(0)
			}
			b.ReportMetric(float64(len(bundle)), "keytrack-B/fragment")
			if len(c.rs) == 1 {
				b.ReportMetric(float64(RecipientEntrySize(c.rs[0].KEM())), "B/fragment/recipient")
			}
		})
	}
}

// BenchmarkAddBundle measures a consumer's first sight of a bundle
// (signature, HPKE open) per recipient kind, and a repeated copy.
func BenchmarkAddBundle(b *testing.B) {
	testKeys(b)
	for _, k := range []*PrivateKey{tX25519, tXWing} {
		e, _ := NewEncryptor(EncryptorConfig{Stream: "cam-1", SigningKey: tDevice, Recipients: []*PublicKey{k.Public()}})
		bundle, _ := e.NewEpoch(0)
		b.Run(k.KEM().String()+"/new", func(b *testing.B) {
			for b.Loop() {
				d, _ := NewDecryptor(DecryptorConfig{Stream: "cam-1", Devices: []*DeviceKey{tDevice.Public()}, Keys: []*PrivateKey{k}})
				if _, err := d.AddBundle(bundle); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(k.KEM().String()+"/repeat", func(b *testing.B) {
			d, _ := NewDecryptor(DecryptorConfig{Stream: "cam-1", Devices: []*DeviceKey{tDevice.Public()}, Keys: []*PrivateKey{k}})
			d.AddBundle(bundle)
			b.ReportAllocs()
			for b.Loop() {
				d.AddBundle(bundle)
			}
		})
	}
}
