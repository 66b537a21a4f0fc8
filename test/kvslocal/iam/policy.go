package iam

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Policy is an IAM (or AWS IoT) policy document. In a configuration file it
// may be written as a JSON object or as a string holding one, as the CLI
// passes it.
type Policy struct {
	Version   string      `json:"Version,omitempty"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement. Action, NotAction and Resource accept a string
// or a list; Principal is "*" or {"AWS"|"Service": string or list}.
type Statement struct {
	Sid       string                         `json:"Sid,omitempty"`
	Effect    string                         `json:"Effect"`
	Action    strings_                       `json:"Action,omitempty"`
	NotAction strings_                       `json:"NotAction,omitempty"`
	Resource  strings_                       `json:"Resource,omitempty"`
	Principal *Principal                     `json:"Principal,omitempty"`
	Condition map[string]map[string]strings_ `json:"Condition,omitempty"`
}

// strings_ is a JSON string or list of strings.
type strings_ []string

func (s *strings_) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = strings_{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("expected a string or a list of strings")
	}
	*s = many
	return nil
}

// Principal is a trust policy's principal.
type Principal struct {
	Any     bool // "*"
	AWS     []string
	Service []string
}

func (p *Principal) UnmarshalJSON(b []byte) error {
	var star string
	if json.Unmarshal(b, &star) == nil {
		if star != "*" {
			return fmt.Errorf("principal %q: only \"*\" may be written as a string", star)
		}
		p.Any = true
		return nil
	}
	var m struct {
		AWS     strings_
		Service strings_
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	p.AWS, p.Service = m.AWS, m.Service
	return nil
}

func (p Principal) MarshalJSON() ([]byte, error) {
	if p.Any {
		return []byte(`"*"`), nil
	}
	m := map[string][]string{}
	if len(p.AWS) > 0 {
		m["AWS"] = p.AWS
	}
	if len(p.Service) > 0 {
		m["Service"] = p.Service
	}
	return json.Marshal(m)
}

// UnmarshalJSON accepts the document or a string holding it.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		b = []byte(s)
	}
	type plain Policy
	var q plain
	if err := json.Unmarshal(b, &q); err != nil {
		// A single statement object instead of a list is valid IAM.
		var one struct {
			Version   string
			Statement Statement
		}
		if json.Unmarshal(b, &one) != nil || one.Statement.Effect == "" {
			return fmt.Errorf("malformed policy document: %v", err)
		}
		q = plain{Version: one.Version, Statement: []Statement{one.Statement}}
	}
	for i, st := range q.Statement {
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return fmt.Errorf("malformed policy document: statement %d: Effect must be Allow or Deny", i)
		}
		if len(st.Action) == 0 && len(st.NotAction) == 0 {
			return fmt.Errorf("malformed policy document: statement %d has no Action", i)
		}
	}
	*p = Policy(q)
	return nil
}

// Decision is the outcome of evaluating policies.
type Decision int

// Decisions, in IAM's order of strength.
const (
	ImplicitDeny Decision = iota
	Allowed
	ExplicitDeny
)

func (d Decision) String() string {
	return [...]string{"implicitly denied", "allowed", "explicitly denied"}[d]
}

// Request is what a policy is evaluated against.
type Request struct {
	Action   string            // service:Action
	Resource string            // an ARN, or "*"
	Context  map[string]string // policy variables and condition keys, e.g. credentials-iot:ThingName
}

// Evaluate applies IAM's logic to identity policies: an explicit Deny wins,
// else any Allow, else the request is implicitly denied. Conditions support
// StringEquals, StringLike and their Not/IgnoreCase forms; any other
// operator makes the statement never match.
func Evaluate(policies []Policy, r Request) Decision {
	d := ImplicitDeny
	for _, p := range policies {
		for _, st := range p.Statement {
			if !st.matches(r) {
				continue
			}
			if st.Effect == "Deny" {
				return ExplicitDeny
			}
			d = Allowed
		}
	}
	return d
}

func (st Statement) matches(r Request) bool {
	if len(st.Action) > 0 && !anyMatch(st.Action, func(a string) bool { return globMatch(a, r.Action, true) }) {
		return false
	}
	if len(st.NotAction) > 0 && anyMatch(st.NotAction, func(a string) bool { return globMatch(a, r.Action, true) }) {
		return false
	}
	if len(st.Resource) > 0 && !anyMatch(st.Resource, func(p string) bool { return ResourceMatch(p, r.Resource, r.Context) }) {
		return false
	}
	return conditionsHold(st.Condition, r.Context)
}

// trusts reports whether a trust policy lets principal (an ARN, or a
// service name when service is true) call action.
func trusts(p Policy, action, principal string, service bool, ctx map[string]string, account string) bool {
	allowed := false
	for _, st := range p.Statement {
		if st.Principal == nil || !anyMatch(st.Action, func(a string) bool { return globMatch(a, action, true) }) || !conditionsHold(st.Condition, ctx) {
			continue
		}
		hit := st.Principal.Any
		if service {
			hit = hit || anyMatch(st.Principal.Service, func(s string) bool { return s == principal })
		} else {
			hit = hit || anyMatch(st.Principal.AWS, func(s string) bool {
				return s == "*" || s == principal || s == account || s == "arn:aws:iam::"+account+":root"
			})
		}
		if !hit {
			continue
		}
		if st.Effect == "Deny" {
			return false
		}
		allowed = true
	}
	return allowed
}

func anyMatch(list []string, f func(string) bool) bool {
	for _, s := range list {
		if f(s) {
			return true
		}
	}
	return false
}

func conditionsHold(cond map[string]map[string]strings_, ctx map[string]string) bool {
	for op, kv := range cond {
		for key, want := range kv {
			got, ok := ctx[key]
			var hit bool
			switch strings.TrimSuffix(op, "IfExists") {
			case "StringEquals":
				hit = ok && anyMatch(want, func(w string) bool { return w == got })
			case "StringEqualsIgnoreCase":
				hit = ok && anyMatch(want, func(w string) bool { return strings.EqualFold(w, got) })
			case "StringNotEquals":
				hit = !ok || !anyMatch(want, func(w string) bool { return w == got })
			case "StringLike":
				hit = ok && anyMatch(want, func(w string) bool { return globMatch(substituteOrEmpty(w, ctx), got, false) })
			case "StringNotLike":
				hit = !ok || !anyMatch(want, func(w string) bool { return globMatch(substituteOrEmpty(w, ctx), got, false) })
			default:
				return false
			}
			if !ok && strings.HasSuffix(op, "IfExists") {
				hit = true
			}
			if !hit {
				return false
			}
		}
	}
	return true
}

// globMatch matches s against a pattern with * and ? wildcards.
func globMatch(pattern, s string, fold bool) bool {
	re := "^" + globRegexp(pattern) + "$"
	if fold {
		re = "(?i)" + re
	}
	ok, _ := regexp.MatchString(re, s)
	return ok
}

func globRegexp(p string) string {
	var b strings.Builder
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return b.String()
}

func substituteOrEmpty(p string, ctx map[string]string) string {
	segs, ok := substitute(p, ctx)
	if !ok {
		return "\x00never"
	}
	var b strings.Builder
	for _, s := range segs {
		if s.literal {
			b.WriteString(strings.NewReplacer("*", "\x01", "?", "\x02").Replace(s.text))
		} else {
			b.WriteString(s.text)
		}
	}
	return b.String()
}

// segment is a piece of a pattern after substitution: pattern text (with
// wildcards) or a literal (a variable's value, or ${*}).
type segment struct {
	text    string
	literal bool
}

var varRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// substitute replaces ${key} and ${key, 'default'} with the context's value
// (once, not recursively); ${*}, ${?} and ${$} are the literal characters.
// It reports false when a variable has no value and no default: the
// statement cannot match.
func substitute(p string, ctx map[string]string) ([]segment, bool) {
	var out []segment
	last := 0
	for _, m := range varRE.FindAllStringSubmatchIndex(p, -1) {
		out = append(out, segment{text: p[last:m[0]]})
		inner := strings.TrimSpace(p[m[2]:m[3]])
		last = m[1]
		switch inner {
		case "*", "?", "$":
			out = append(out, segment{text: inner, literal: true})
			continue
		}
		key, def, hasDef := strings.Cut(inner, ",")
		key = strings.TrimSpace(key)
		if v, ok := ctx[key]; ok {
			out = append(out, segment{text: v, literal: true})
			continue
		}
		if !hasDef {
			return nil, false
		}
		def = strings.Trim(strings.TrimSpace(def), "'")
		out = append(out, segment{text: def, literal: true})
	}
	out = append(out, segment{text: p[last:]})
	return out, true
}

// ResourceMatch matches an ARN against a policy's Resource pattern after
// substituting policy variables from ctx. The six ARN components
// (arn:partition:service:region:account:resource) are matched separately;
// within the resource component * also crosses '/'.
func ResourceMatch(pattern, arn string, ctx map[string]string) bool {
	segs, ok := substitute(pattern, ctx)
	if !ok {
		return false
	}
	if pattern == "*" {
		return true
	}
	// Split the pattern into components on the first five ':' of its
	// pattern text (a variable's value never splits).
	comps := []string{""}
	for _, s := range segs {
		if s.literal {
			comps[len(comps)-1] += regexp.QuoteMeta(s.text)
			continue
		}
		for _, r := range s.text {
			if r == ':' && len(comps) < 6 {
				comps = append(comps, "")
				continue
			}
			comps[len(comps)-1] += globRegexp(string(r))
		}
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(comps) != len(parts) {
		return false
	}
	for i := range parts {
		fold := i < 3 // arn, partition and service are case-insensitive
		re := "^" + comps[i] + "$"
		if fold {
			re = "(?i)" + re
		}
		if ok, _ := regexp.MatchString(re, parts[i]); !ok {
			return false
		}
	}
	return true
}
