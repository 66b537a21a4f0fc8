// Package inspect reads the properties of a registered element from
// gst-inspect-1.0 output, for the property-table checks and the README's
// generated table.
package inspect

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
)

// Property is one element property as gst-inspect shows it.
type Property struct {
	Name    string
	Blurb   string
	Type    string // String, Boolean, Unsigned Integer, Unsigned Integer64, Enum, Boxed GstStructure, ...
	Default string
	Range   string // "lo - hi" of numeric properties, as gst-inspect prints it
	Flags   string
}

// Run returns gst-inspect-1.0's output for element, with pluginDir on the
// plugin path and a private registry.
func Run(element, pluginDir, registry string) (string, error) {
	cmd := exec.Command("gst-inspect-1.0", element)
	cmd.Env = append(os.Environ(), "GST_PLUGIN_PATH="+pluginDir, "GST_REGISTRY="+registry)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("gst-inspect-1.0 %s: %v\n%s", element, err, out)
	}
	return string(out), nil
}

var (
	propLine = regexp.MustCompile(`^  ([a-z0-9-]+)\s*: (.*)$`)
	typeLine = regexp.MustCompile(`^\s{20,}(String|Boolean|Unsigned Integer64|Unsigned Integer|Integer64|Integer|Enum "[^"]+"|Boxed pointer of type "[^"]+"|Object of type "[^"]+"|Unsigned Long|Double|Float)(.*)$`)
	defRE    = regexp.MustCompile(`Default: (.*)$`)
	rangeRE  = regexp.MustCompile(`Range: (\S+ - \S+)`)
)

// Parse extracts the "Element Properties" section.
func Parse(out string) []Property {
	var props []Property
	in := false
	var cur *Property
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Element Properties:") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if l != "" && !strings.HasPrefix(l, " ") {
			break // next section
		}
		if m := propLine.FindStringSubmatch(l); m != nil {
			props = append(props, Property{Name: m[1], Blurb: strings.TrimSpace(m[2])})
			cur = &props[len(props)-1]
			continue
		}
		if cur == nil {
			continue
		}
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "flags:"):
			cur.Flags = strings.TrimSpace(strings.TrimPrefix(t, "flags:"))
		case cur.Type == "" && typeLine.MatchString(l):
			m := typeLine.FindStringSubmatch(l)
			cur.Type = normalise(m[1])
			if d := defRE.FindStringSubmatch(m[2]); d != nil {
				cur.Default = strings.TrimSpace(d[1])
			}
			if r := rangeRE.FindStringSubmatch(m[2]); r != nil {
				cur.Range = r[1]
			}
		}
	}
	return props
}

func normalise(t string) string {
	switch {
	case strings.HasPrefix(t, "Enum"):
		return "Enum"
	case strings.HasPrefix(t, "Boxed pointer of type \"GstStructure\""):
		return "Boxed GstStructure"
	}
	return t
}

// Inherited lists GstObject/GstBaseSink properties that the README table
// leaves out (sync is kvssink's own: it changes the default).
var Inherited = map[string]bool{
	"name": true, "parent": true, "async": true, "blocksize": true, "enable-last-sample": true, "last-sample": true,
	"max-bitrate": true, "max-lateness": true, "processing-deadline": true, "qos": true, "render-delay": true,
	"stats": true, "throttle-time": true, "ts-offset": true,
}

// Markdown renders the element's own properties as a table.
func Markdown(props []Property) string {
	sorted := append([]Property(nil), props...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var b strings.Builder
	b.WriteString("| Property | Type | Range | Default | Description |\n|---|---|---|---|---|\n")
	for _, p := range sorted {
		if Inherited[p.Name] {
			continue
		}
		def := p.Default
		if def == "" {
			def = "—"
		}
		rng := p.Range
		if rng == "" {
			rng = "—"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", p.Name, p.Type, rng, esc(def), esc(p.Blurb))
	}
	return b.String()
}

func esc(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
