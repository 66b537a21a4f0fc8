// Package e2ee seals and opens the frames of an end-to-end encrypted
// Kinesis video stream (KVS-E2EE v1) and manages the keys that make that
// possible: the RFC 9605 SFrame layer, the per-epoch key schedule, the
// signed key bundle carried in every fragment, and the key files of devices
// and recipients.
//
// Its one job is the cryptography of a stream; it does no I/O besides reading
// and writing key files and replay state files, and knows nothing of Matroska, the network or
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
// KVS-E2EE v1, specified in SPEC.md beside this file (wire format, key
// schedule, bundle, what is authenticated, threat model, test vectors):
// [DeriveBaseKey], [KID], [AppendMetadata], [Bundle], [ParseBundle],
// [Head]; the producer side is [Encryptor], the consumer side [Decryptor]
// with its replay state ([DecryptorState]).
//
// Keys: recipient key pairs ([PrivateKey], [PublicKey]; DHKEM(X25519) and
// MLKEM768-X25519), device signing keys ([SigningKey], [DeviceKey]), and
// their text format, described below.
//
// # Key files (text format, version 1)
//
// Every key is one line "KIND:BASE64", where BASE64 is standard, padded
// base64 (RFC 4648 §4) of the key's bytes, optionally followed by
// whitespace and a free-text label (public entries only):
//
//	x25519:BASE64           recipient public key, DHKEM(X25519, HKDF-SHA256), 32 bytes
//	xwing:BASE64            recipient public key, MLKEM768-X25519 (X-Wing), 1216 bytes
//	ed25519:BASE64          device public key (pinned by consumers), 32 bytes
//	x25519-private:BASE64   recipient private key, 32 bytes
//	xwing-private:BASE64    recipient private key, the 32-byte seed
//	ed25519-private:BASE64  device signing key, the 32-byte RFC 8032 seed
//
// A key file holds such lines; blank lines and lines starting with '#' are
// ignored. A private key file holds exactly one private entry and is
// written with mode 0600; loading one that group or others can read fails
// with ErrKeyPermissions. A recipients file (the e2ee-recipients property)
// holds any number of public recipient entries. "mlkem768x25519" is
// accepted as another name for "xwing".
//
// Recipient and signer ids are the first 8 bytes of SHA-256 over
// BE16(kem_id) || public key (recipients) or over the Ed25519 public key
// (signers), printed as 16 lowercase hex digits; they are what key bundles
// carry and what messages print.
//
// # Secrets
//
// No secret (epoch secret, base key, SFrame key or salt, private key) is ever
// part of an error, a String method or a log line. Types holding secrets
// print only their kind and public id.
package e2ee
