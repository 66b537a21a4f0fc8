package mkv

import "encoding/binary"

// This file decodes what the event layer holds in memory: leaf values,
// whole Tags and BlockGroup elements, and block headers.

// uint reads an unsigned integer element of up to 8 bytes.
func (r *Reader) uint(e Element) (uint64, error) {
	d, err := r.ReadData()
	if err != nil {
		return 0, err
	}
	if len(d) > 8 {
		return 0, syntaxErr(e.Offset, e.ID, nil, "%s at offset %d is an integer of %d bytes", ElementName(e.ID), e.Offset, len(d))
	}
	v, _ := ParseUint(d)
	return v, nil
}

// str reads a string element.
func (r *Reader) str(e Element) (string, error) {
	d, err := r.ReadData()
	return string(d), err
}

// readTags reads a whole Tags element.
func (r *Reader) readTags(e Element) (Event, bool, error) {
	body, err := r.readWhole(e)
	if err != nil {
		return Event{}, false, err
	}
	r.tagsRaw = append(append(r.tagsRaw[:0], r.lastHeader()...), body...)
	tags, err := parseTags(body, e.DataOffset())
	if err != nil {
		return Event{}, false, err
	}
	return Event{Kind: EventTags, Offset: e.Offset, Tags: tags, TagsRaw: r.tagsRaw}, true, nil
}

// walk calls fn for each element of a payload held in memory (the payload
// of a within element starting at offset base).
func walk(b []byte, base int64, within uint32, fn func(id uint32, off int64, d []byte) error) error {
	for off := 0; off < len(b); {
		id, n, err := ReadID(b[off:])
		if err != nil {
			return syntaxErr(base+int64(off), 0, ErrInvalidVint, "invalid element ID at offset %d in %s", base+int64(off), ElementName(within))
		}
		size, sn, err := ReadSize(b[off+n:])
		if err != nil || size < 0 || size > int64(len(b)-off-n-sn) {
			return syntaxErr(base+int64(off), id, ErrInvalidVint, "invalid element size at offset %d in %s", base+int64(off+n), ElementName(within))
		}
		start := off + n + sn
		if err := fn(id, base+int64(start), b[start:start+int(size)]); err != nil {
			return err
		}
		off = start + int(size)
	}
	return nil
}

// parseTags collects the SimpleTags (also nested ones) of a Tags payload.
func parseTags(b []byte, base int64) ([]SimpleTag, error) {
	var out []SimpleTag
	var simple func(d []byte, off int64) error
	simple = func(d []byte, off int64) error {
		i := len(out)
		out = append(out, SimpleTag{})
		return walk(d, off, IDSimpleTag, func(id uint32, off int64, d []byte) error {
			switch id {
			case IDTagName:
				out[i].Name = string(d)
			case IDTagString:
				out[i].Value = string(d)
			case IDSimpleTag:
				return simple(d, off)
			}
			return nil
		})
	}
	err := walk(b, base, IDTags, func(id uint32, off int64, d []byte) error {
		if id != IDTag {
			return nil
		}
		return walk(d, off, IDTag, func(id uint32, off int64, d []byte) error {
			if id == IDSimpleTag {
				return simple(d, off)
			}
			return nil
		})
	})
	return out, err
}

// parseBlock decodes a SimpleBlock or Block payload.
func parseBlock(d []byte, off int64) (Block, error) {
	var b Block
	tn := 0
	if len(d) > 0 {
		tn = VintLen(d[0])
	}
	if tn == 0 || len(d) < tn+3 {
		return b, syntaxErr(off, IDSimpleBlock, nil, "invalid block header at offset %d", off)
	}
	track, _, err := ReadSize(d[:tn])
	if err != nil || track <= 0 {
		return b, syntaxErr(off, IDSimpleBlock, nil, "invalid block track number at offset %d", off)
	}
	b.Track = uint64(track)
	b.RelTimecode = int16(binary.BigEndian.Uint16(d[tn:]))
	b.Flags = d[tn+2]
	if b.Flags&0x06 != 0 {
		return b, syntaxErr(off, IDSimpleBlock, ErrLacing, "laced block at offset %d (lacing is not supported)", off)
	}
	b.Data = d[tn+3:]
	return b, nil
}

// readBlockGroup reads a BlockGroup whole; its Block is a key frame unless
// the group has a ReferenceBlock.
func (r *Reader) readBlockGroup(e Element) (Event, bool, error) {
	if r.enclosing(1) != IDCluster || !r.haveTC {
		return Event{}, false, syntaxErr(e.Offset, e.ID, nil, "BlockGroup at offset %d outside a Cluster or before its Timecode", e.Offset)
	}
	body, err := r.readWhole(e)
	if err != nil {
		return Event{}, false, err
	}
	var blk []byte
	blkOff, ref := int64(0), false
	err = walk(body, e.DataOffset(), IDBlockGroup, func(id uint32, off int64, d []byte) error {
		switch id {
		case IDBlock:
			blk, blkOff = d, off
		case 0xFB: // ReferenceBlock
			ref = true
		}
		return nil
	})
	if err != nil {
		return Event{}, false, err
	}
	if blk == nil {
		return Event{}, false, syntaxErr(e.Offset, e.ID, nil, "BlockGroup without a Block at offset %d", e.Offset)
	}
	b, err := parseBlock(blk, blkOff)
	if err != nil {
		return Event{}, false, err
	}
	b.Keyframe = !ref
	return Event{Kind: EventBlock, Offset: e.Offset, Block: b}, true, nil
}
