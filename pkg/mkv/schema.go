package mkv

import "fmt"

// This file is the part of the Matroska schema the element layer needs:
// which elements are masters, which children each may hold (so that an
// unknown-size master ends at the first element it cannot contain), which
// IDs are top level, and the names error messages use.

// elementNames names the elements error messages mention.
var elementNames = map[uint32]string{
	IDEBML: "EBML", IDSegment: "Segment", IDSeekHead: "SeekHead", IDInfo: "Info", IDTracks: "Tracks",
	IDTrackEntry: "TrackEntry", IDVideo: "Video", IDAudio: "Audio", IDCluster: "Cluster", IDTimecode: "Timecode",
	IDSimpleBlock: "SimpleBlock", IDBlockGroup: "BlockGroup", IDBlock: "Block", IDCues: "Cues", IDTags: "Tags",
	IDTag: "Tag", IDSimpleTag: "SimpleTag", IDTargets: "Targets", IDTagName: "TagName", IDTagString: "TagString",
	IDCodecPrivate: "CodecPrivate", IDCodecID: "CodecID", IDVoid: "Void", IDTimecodeScale: "TimecodeScale",
	IDSegmentUID: "SegmentUID", IDTrackNumber: "TrackNumber", IDSamplingFreq: "SamplingFrequency",
}

// ElementName returns the element's Matroska name, or its ID in hex.
func ElementName(id uint32) string {
	if n, ok := elementNames[id]; ok {
		return fmt.Sprintf("%s (0x%X)", n, id)
	}
	return fmt.Sprintf("element 0x%X", id)
}

// children lists, for the masters the reader descends into, the IDs they may
// contain. An unknown-size master ends at the first element that is not in
// its list. A nil list means "any ID that is not a top-level (level 0/1) ID
// and not already open", which is right for the masters producers never
// write with an unknown size.
var children = map[uint32]map[uint32]bool{
	IDEBML: {IDEBMLVersion: true, IDEBMLReadVersion: true, IDEBMLMaxIDLength: true, IDEBMLMaxSizeLength: true,
		IDDocType: true, IDDocTypeVersion: true, IDDocTypeReadVersion: true, 0x4281: true, IDVoid: true, IDCRC32: true},
	IDSegment: {IDSeekHead: true, IDInfo: true, IDTracks: true, IDCluster: true, IDCues: true, IDTags: true,
		0x1043A770 /* Chapters */ : true, 0x1941A469 /* Attachments */ : true, IDVoid: true, IDCRC32: true},
	IDCluster: {IDTimecode: true, IDPosition: true, IDPrevSize: true, IDSimpleBlock: true, IDBlockGroup: true,
		0x5854 /* SilentTracks */ : true, 0xAF /* EncryptedBlock */ : true, IDVoid: true, IDCRC32: true},
	IDTags:       {IDTag: true, IDVoid: true, IDCRC32: true},
	IDTag:        {IDTargets: true, IDSimpleTag: true, IDVoid: true, IDCRC32: true},
	IDInfo:       nil,
	IDTracks:     {IDTrackEntry: true, IDVoid: true, IDCRC32: true},
	IDTrackEntry: nil, IDVideo: nil, IDAudio: nil, IDSimpleTag: nil, IDTargets: nil,
	IDBlockGroup: nil, IDSeekHead: nil, IDCues: nil,
}

// topLevel are the IDs of level 0 and 1: they never sit deeper.
var topLevel = map[uint32]bool{IDEBML: true, IDSegment: true, IDSeekHead: true, IDInfo: true, IDTracks: true,
	IDCluster: true, IDCues: true, IDTags: true, 0x1043A770: true, 0x1941A469: true}

func isMaster(id uint32) bool { _, ok := children[id]; return ok }
