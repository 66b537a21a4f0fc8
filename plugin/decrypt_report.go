package main

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-gst/go-gst/gst"

	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
)

// warnEvery bounds kvsdecrypt's warnings: the first problem of each cause
// is posted at once, then at most one summary per cause per warnEvery, so
// a stream of undecryptable frames cannot flood the bus.
const warnEvery = 5 * time.Second

// problemReporter turns mkvstream's counted problems into rate-limited
// element warnings and, for a context mismatch, an error that stops the
// stream.
type problemReporter struct {
	el   *element // posts the warnings (kvsdecrypt's or kvssrc's)
	name string   // of the element, the start of every warning
	now  func() time.Time
	mu   sync.Mutex
	last map[error]time.Time // cause -> last warning
	seen map[error]int       // cause -> count at the last warning
}

func newProblemReporter(el *element, name string) *problemReporter {
	return &problemReporter{el: el, name: name, now: time.Now, last: map[error]time.Time{}, seen: map[error]int{}}
}

func (p *problemReporter) report(err error, rep *mkvstream.Report) error {
	cause := mkvstream.Cause(err)
	p.mu.Lock()
	t, warned := p.last[cause]
	now := p.now()
	if warned && now.Sub(t) < warnEvery {
		p.mu.Unlock()
		return nil
	}
	n := rep.Counts[cause]
	since := n - p.seen[cause]
	p.last[cause], p.seen[cause] = now, n
	p.mu.Unlock()
	msg := fmt.Sprintf("%s: %v", p.name, err)
	if warned {
		msg = fmt.Sprintf("%s: %d more frames or bundles dropped for %q (%d in all); latest: %v", p.name, since, cause, n, err)
	}
	p.el.post(kindWarning, domainStream, int(gst.StreamErrorDecrypt), msg, summary(rep))
	return nil
}

// summary is a Report in one line, for the debug text of messages.
func summary(rep *mkvstream.Report) string {
	var causes []string
	for c, n := range rep.Counts {
		causes = append(causes, fmt.Sprintf("%q=%d", c, n))
	}
	sort.Strings(causes)
	return fmt.Sprintf("clusters=%d bundles=%d accepted=%d frames=%d opened=%d causes: %s",
		rep.Clusters, rep.Bundles, rep.BundlesAccepted, rep.Frames, rep.Opened, strings.Join(causes, " "))
}
