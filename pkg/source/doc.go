// Package source reads a Kinesis video stream back as one playable Matroska
// stream: the reading core of the kvssrc element, without GStreamer.
//
// Live, it reads GetMedia from any start selector and, when the connection
// drops or the service ends the response (no new fragment for a while),
// reconnects from the last continuation token; fragments and frames already
// delivered are never delivered again, and a fragment cut off mid-way
// resumes after its last delivered frame. Archived, it lists the fragments
// of a time range (ListFragments) and reads them in batches
// (GetMediaForFragmentList), resuming the same way.
//
// The fragments (one Matroska segment each, as the service sends them) are
// optionally decrypted end to end (pkg/e2ee/mkvstream, as kvsdecrypt does)
// and joined into one segment whose timecodes start at 0, which any
// Matroska demuxer plays through. Archived output also carries the range's
// duration and an index of its fragments at virtual offsets (cues.go), so
// that a demuxer in push mode can seek.
//
// It imports pkg/kvs, pkg/mkv, pkg/e2ee, pkg/clock and the standard library;
// it must not import GStreamer, glib or pkg/sink, and has no cgo.
package source
