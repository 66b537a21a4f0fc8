// Package e2ee seals and opens the frames of an end-to-end encrypted
// Kinesis video stream (KVS-E2EE v1) and manages the keys that make that
// possible: the RFC 9605 SFrame layer, the per-epoch key schedule, the
// signed key bundle carried in every fragment, and the key files of devices
// and recipients.
//
// Its one job is the cryptography of a stream; it does no I/O besides reading
// and writing key files, and knows nothing of Matroska, the network or
// GStreamer. It imports the standard library only (crypto/hpke, crypto/hkdf,
// crypto/ed25519, crypto/aes, crypto/cipher); it must not import other kvsgo
// packages, the AWS SDK, cgo or GStreamer. The Matroska-level stream
// transform lives in the sub-package mkvstream, which imports this package
// and pkg/mkv, never the other way round.
//
// # Layers
//
// SFrame (RFC 9605): [Suite], [NewKey], [Key.Seal], [Key.Open],
// [AppendHeader], [ParseHeader], [NewAEAD]. The nonce is
// sframe_salt XOR BE96(CTR) and the AAD is header || metadata (RFC 9605
// §4.4.3); every (base_key, KID, CTR) must be used for at most one
// encryption, which the layers above guarantee.
//
// KVS-E2EE v1 (e2ee.md §6): [DeriveBaseKey], [KID], [AppendMetadata],
// [Bundle], [ParseBundle]; the producer side is [Encryptor], the consumer
// side [Decryptor].
//
// Keys: recipient key pairs ([PrivateKey], [PublicKey]; DHKEM(X25519) and
// MLKEM768-X25519), device signing keys ([SigningKey], [DeviceKey]), and
// their text format (see keys.go and [ParsePublicKey]).
//
// # Secrets
//
// No secret (epoch secret, base key, SFrame key or salt, private key) is ever
// part of an error, a String method or a log line. Types holding secrets
// print only their kind and public id.
package e2ee
