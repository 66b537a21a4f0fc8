package iam

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// The AWS IoT control plane (restJson1; the CLI signs it as execute-api,
// newer botocore as iot): the calls of the KVS developer guide's IoT
// walkthrough, with describe, list, update, detach and delete for what they
// create. Answers and errors have AWS's shapes (checked against moto's in
// the tests); every call is authorized as iot:<Operation>.

const iotEventSource = "iot.amazonaws.com"

// iotError is an IoT exception.
type iotError struct {
	status        int
	code, message string
	extra         map[string]string // resourceId, resourceArn
}

var iotStatus = map[string]int{
	"InvalidRequestException": 400, "ResourceAlreadyExistsException": 409, "ResourceNotFoundException": 404,
	"UnauthorizedException": 401, "MalformedPolicyException": 400, "DeleteConflictException": 409,
	"CertificateStateException": 406, "InternalFailureException": 500, "AccessDeniedException": 403,
	"VersionConflictException": 409, "UnknownOperationException": 404,
}

func iotErr(code, format string, args ...any) *iotError {
	st := iotStatus[code]
	if st == 0 {
		st = http.StatusBadRequest
	}
	return &iotError{status: st, code: code, message: fmt.Sprintf(format, args...)}
}

func writeIoTAPIError(w http.ResponseWriter, e *iotError) {
	body := map[string]string{"message": e.message}
	for k, v := range e.extra {
		body[k] = v
	}
	writeIoTError(w, e.status, e.code, body)
}

type iotCallKey struct{}

// iotOp is one operation: its name and handler.
type iotOp struct {
	name string
	run  func(s *Server, r *http.Request, in map[string]any) (any, *iotError)
	// resource names the ARN to authorize (default *).
	resource func(s *Server, r *http.Request) string
}

var iotRoutes = map[string]iotOp{
	"POST /thing-types/{name}":           {"CreateThingType", (*Server).createThingType, thingTypeARN},
	"GET /thing-types/{name}":            {"DescribeThingType", (*Server).describeThingType, thingTypeARN},
	"DELETE /thing-types/{name}":         {"DeleteThingType", (*Server).deleteThingType, thingTypeARN},
	"POST /thing-types/{name}/deprecate": {"DeprecateThingType", (*Server).deprecateThingType, thingTypeARN},
	"GET /thing-types":                   {"ListThingTypes", (*Server).listThingTypes, nil},
	"POST /things/{name}":                {"CreateThing", (*Server).createThing, thingARN},
	"GET /things/{name}":                 {"DescribeThing", (*Server).describeThing, thingARN},
	"DELETE /things/{name}":              {"DeleteThing", (*Server).deleteThing, thingARN},
	"GET /things":                        {"ListThings", (*Server).listThings, nil},
	"PUT /things/{name}/principals":      {"AttachThingPrincipal", (*Server).attachThingPrincipal, thingARN},
	"DELETE /things/{name}/principals":   {"DetachThingPrincipal", (*Server).detachThingPrincipal, thingARN},
	"GET /things/{name}/principals":      {"ListThingPrincipals", (*Server).listThingPrincipals, thingARN},
	"GET /principals/things":             {"ListPrincipalThings", (*Server).listPrincipalThings, nil},
	"POST /role-aliases/{name}":          {"CreateRoleAlias", (*Server).createRoleAlias, roleAliasARN},
	"GET /role-aliases/{name}":           {"DescribeRoleAlias", (*Server).describeRoleAlias, roleAliasARN},
	"PUT /role-aliases/{name}":           {"UpdateRoleAlias", (*Server).updateRoleAlias, roleAliasARN},
	"DELETE /role-aliases/{name}":        {"DeleteRoleAlias", (*Server).deleteRoleAlias, roleAliasARN},
	"GET /role-aliases":                  {"ListRoleAliases", (*Server).listRoleAliases, nil},
	"POST /policies/{name}":              {"CreatePolicy", (*Server).createIoTPolicy, iotPolicyARN},
	"GET /policies/{name}":               {"GetPolicy", (*Server).getIoTPolicy, iotPolicyARN},
	"DELETE /policies/{name}":            {"DeletePolicy", (*Server).deleteIoTPolicy, iotPolicyARN},
	"GET /policies":                      {"ListPolicies", (*Server).listIoTPolicies, nil},
	"POST /keys-and-certificate":         {"CreateKeysAndCertificate", (*Server).createKeysAndCertificate, nil},
	"GET /certificates/{name}":           {"DescribeCertificate", (*Server).describeCertificate, certARNOf},
	"PUT /certificates/{name}":           {"UpdateCertificate", (*Server).updateCertificate, certARNOf},
	"DELETE /certificates/{name}":        {"DeleteCertificate", (*Server).deleteCertificate, certARNOf},
	"GET /certificates":                  {"ListCertificates", (*Server).listCertificates, nil},
	"PUT /target-policies/{name}":        {"AttachPolicy", (*Server).attachIoTPolicy, iotPolicyARN},
	"POST /target-policies/{name}":       {"DetachPolicy", (*Server).detachIoTPolicy, iotPolicyARN},
	"POST /attached-policies/{name}":     {"ListAttachedPolicies", (*Server).listAttachedPolicies, nil},
	"POST /policy-targets/{name}":        {"ListTargetsForPolicy", (*Server).listTargetsForPolicy, iotPolicyARN},
	"GET /endpoint":                      {"DescribeEndpoint", (*Server).describeEndpoint, nil},
}

func (s *Server) iotARN(kind, name string) string {
	return "arn:aws:iot:" + s.region + ":" + s.account + ":" + kind + "/" + name
}

func thingTypeARN(s *Server, r *http.Request) string {
	return s.iotARN("thingtype", r.PathValue("name"))
}
func thingARN(s *Server, r *http.Request) string { return s.iotARN("thing", r.PathValue("name")) }
func roleAliasARN(s *Server, r *http.Request) string {
	return s.iotARN("rolealias", r.PathValue("name"))
}
func iotPolicyARN(s *Server, r *http.Request) string { return s.iotARN("policy", r.PathValue("name")) }
func certARNOf(s *Server, r *http.Request) string    { return s.iotARN("cert", r.PathValue("name")) }

// iotService is the IoT control plane as a kvslocal.Service.
type iotService struct {
	s   *Server
	mux *http.ServeMux
}

func newIoTService(s *Server) *iotService {
	svc := &iotService{s: s, mux: http.NewServeMux()}
	for pattern, op := range iotRoutes {
		svc.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { svc.run(w, r, op) })
	}
	svc.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeIoTAPIError(w, iotErr("UnknownOperationException", "%s %s is not an operation of AWS IoT here.", r.Method, r.URL.Path))
	})
	return svc
}

// iotOperation names the operation a request is for ("" if none).
func (svc *iotService) operation(r *http.Request) string {
	_, pattern := svc.mux.Handler(r)
	return iotRoutes[pattern].name
}

func (svc *iotService) AuthError(w http.ResponseWriter, r *http.Request, body []byte, e *kvslocal.SigV4Error) {
	kvslocal.NoteAuditCall(w, iotEventSource, svc.operation(r), nil)
	writeIoTAPIError(w, &iotError{status: http.StatusForbidden, code: coralCodes[e.Failure], message: e.Message})
}

// coralCodes are the front end's authentication error codes (restJson1 and
// awsJson services).
var coralCodes = map[kvslocal.SigV4Failure]string{
	kvslocal.SigV4MissingAuth:  "MissingAuthenticationTokenException",
	kvslocal.SigV4Incomplete:   "IncompleteSignatureException",
	kvslocal.SigV4UnknownKey:   "UnrecognizedClientException",
	kvslocal.SigV4ExpiredToken: "ExpiredTokenException",
	kvslocal.SigV4Mismatch:     "InvalidSignatureException",
}

func (svc *iotService) ServeAWS(w http.ResponseWriter, r *http.Request, body []byte, call kvslocal.Call) {
	if p := r.URL.Path; p != path.Clean(p) || strings.HasSuffix(p, "/") && p != "/" {
		// ServeMux would redirect a path that is not clean; AWS answers
		// that no operation is there.
		kvslocal.NoteAuditCall(w, iotEventSource, "", nil)
		writeIoTAPIError(w, iotErr("UnknownOperationException", "%s %s is not an operation of AWS IoT here.", r.Method, p))
		return
	}
	kvslocal.NoteAuditCall(w, iotEventSource, svc.operation(r), nil)
	ctx := context.WithValue(r.Context(), iotCallKey{}, iotCall{call: call, body: body})
	svc.mux.ServeHTTP(w, r.WithContext(ctx))
}

type iotCall struct {
	call kvslocal.Call
	body []byte
}

func (svc *iotService) run(w http.ResponseWriter, r *http.Request, op iotOp) {
	s := svc.s
	c := r.Context().Value(iotCallKey{}).(iotCall)
	in := map[string]any{}
	if len(c.body) > 0 {
		if err := json.Unmarshal(c.body, &in); err != nil {
			writeIoTAPIError(w, iotErr("InvalidRequestException", "The request body is not a JSON object."))
			return
		}
	}
	params := map[string]any{}
	for k, v := range in {
		params[k] = v
	}
	if n := r.PathValue("name"); n != "" {
		params["name"] = n
	}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	if p := r.Header.Get("x-amzn-principal"); p != "" {
		params["principal"] = p
	}
	kvslocal.NoteAuditCall(w, iotEventSource, op.name, params)
	resource := "*"
	if op.resource != nil {
		resource = op.resource(s, r)
	}
	if err := s.Authorize(kvslocal.AuthzRequest{AccessKeyID: c.call.AccessKeyID, Action: "iot:" + op.name, Resource: resource}); err != nil {
		writeIoTAPIError(w, iotErr("AccessDeniedException", "%s", err.Error()))
		return
	}
	out, e := op.run(s, r, in)
	if e != nil {
		writeIoTAPIError(w, e)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if out == nil {
		return // an empty 200, as AWS answers AttachPolicy and the like
	}
	json.NewEncoder(w).Encode(out)
}

var (
	thingNameRE  = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)
	aliasRE      = regexp.MustCompile(`^[\w=,@-]{1,128}$`)
	iotPolicyRE  = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	certIDRE     = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	validateName = func(re *regexp.Regexp, what, v string) *iotError {
		if !re.MatchString(v) {
			return iotErr("InvalidRequestException", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", v, what, strings.Trim(re.String(), "^$"))
		}
		return nil
	}
)

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func strIn(in map[string]any, k string) string {
	v, _ := in[k].(string)
	return v
}

func alreadyExists(kind, id, arn string) *iotError {
	e := iotErr("ResourceAlreadyExistsException", "%s %s already exists.", kind, id)
	e.extra = map[string]string{"resourceId": id, "resourceArn": arn}
	return e
}

// --- thing types

func (s *Server) createThingType(r *http.Request, in map[string]any) (any, *iotError) {
	name := r.PathValue("name")
	if e := validateName(thingNameRE, "thingTypeName", name); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.types[name]; t != nil {
		return nil, alreadyExists("Thing Type", name, s.iotARN("thingtype", name))
	}
	t := &thingType{name: name, id: thingID("type/" + name), created: s.now().UTC()}
	s.types[name] = t
	return map[string]any{"thingTypeName": name, "thingTypeArn": s.iotARN("thingtype", name), "thingTypeId": t.id}, nil
}

func (s *Server) thingTypeLocked(name string) (*thingType, *iotError) {
	t := s.types[name]
	if t == nil {
		return nil, iotErr("ResourceNotFoundException", "Thing Type %s does not exist", name)
	}
	return t, nil
}

func (s *Server) thingTypeJSON(t *thingType) map[string]any {
	meta := map[string]any{"deprecated": t.deprecated, "creationDate": epoch(t.created)}
	if t.deprecated {
		meta["deprecationDate"] = epoch(t.deprecAt)
	}
	return map[string]any{"thingTypeName": t.name, "thingTypeId": t.id, "thingTypeArn": s.iotARN("thingtype", t.name),
		"thingTypeProperties": map[string]any{"searchableAttributes": []string{}}, "thingTypeMetadata": meta}
}

func (s *Server) describeThingType(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.thingTypeLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	return s.thingTypeJSON(t), nil
}

func (s *Server) listThingTypes(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := r.URL.Query().Get("thingTypeName")
	out := []any{}
	for _, n := range sortedKeys(s.types) {
		if want == "" || want == n {
			j := s.thingTypeJSON(s.types[n])
			delete(j, "thingTypeId")
			out = append(out, j)
		}
	}
	return map[string]any{"thingTypes": out}, nil
}

func (s *Server) deprecateThingType(r *http.Request, in map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.thingTypeLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	undo, _ := in["undoDeprecate"].(bool)
	t.deprecated, t.deprecAt = !undo, s.now().UTC()
	return map[string]any{}, nil
}

// deleteThingType needs the type deprecated and unused, as AWS does (AWS
// also waits five minutes after the deprecation; here it is at once).
func (s *Server) deleteThingType(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.thingTypeLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	if !t.deprecated {
		return nil, iotErr("InvalidRequestException", "Thing Type %s must be deprecated before it can be deleted.", t.name)
	}
	for _, th := range s.things {
		if th.typeName == t.name {
			return nil, iotErr("InvalidRequestException", "Can not delete thing type %s: thing %s is associated with it.", t.name, th.name)
		}
	}
	delete(s.types, t.name)
	return map[string]any{}, nil
}

// --- things

func (s *Server) createThing(r *http.Request, in map[string]any) (any, *iotError) {
	name := r.PathValue("name")
	if e := validateName(thingNameRE, "thingName", name); e != nil {
		return nil, e
	}
	typ := strIn(in, "thingTypeName")
	s.mu.Lock()
	defer s.mu.Unlock()
	if typ != "" {
		t, e := s.thingTypeLocked(typ)
		if e != nil {
			return nil, e
		}
		if t.deprecated {
			return nil, iotErr("InvalidRequestException", "Can not create a new thing with deprecated thing type %s", typ)
		}
	}
	if old := s.things[name]; old != nil {
		if old.typeName == typ { // AWS answers an identical CreateThing with the thing
			return map[string]any{"thingName": name, "thingArn": s.iotARN("thing", name), "thingId": old.id}, nil
		}
		return nil, alreadyExists("Thing", name, s.iotARN("thing", name))
	}
	t := &thing{name: name, id: thingID(name), typeName: typ, version: 1}
	s.things[name] = t
	return map[string]any{"thingName": name, "thingArn": s.iotARN("thing", name), "thingId": t.id}, nil
}

func (s *Server) thingLocked(name string) (*thing, *iotError) {
	t := s.things[name]
	if t == nil {
		return nil, iotErr("ResourceNotFoundException", "Thing %s cannot be found.", name)
	}
	return t, nil
}

func (s *Server) describeThing(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.thingLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	out := map[string]any{"defaultClientId": t.name, "thingName": t.name, "thingId": t.id, "thingArn": s.iotARN("thing", t.name),
		"attributes": map[string]string{}, "version": t.version}
	if t.typeName != "" {
		out["thingTypeName"] = t.typeName
	}
	return out, nil
}

func (s *Server) listThings(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	typ := r.URL.Query().Get("thingTypeName")
	out := []any{}
	for _, n := range sortedKeys(s.things) {
		t := s.things[n]
		if typ != "" && t.typeName != typ {
			continue
		}
		j := map[string]any{"thingName": t.name, "thingArn": s.iotARN("thing", t.name), "attributes": map[string]string{}, "version": t.version}
		if t.typeName != "" {
			j["thingTypeName"] = t.typeName
		}
		out = append(out, j)
	}
	return map[string]any{"things": out}, nil
}

// deleteThing succeeds for a thing that does not exist, as AWS does; a
// thing with attached principals cannot be deleted.
func (s *Server) deleteThing(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.things[r.PathValue("name")]
	if t == nil {
		return map[string]any{}, nil
	}
	if len(t.principals) > 0 {
		return nil, iotErr("InvalidRequestException", "Cannot delete thing %s: it has attached principals. Detach them with detach-thing-principal first.", t.name)
	}
	delete(s.things, t.name)
	return map[string]any{}, nil
}

// principalCert resolves a certificate ARN (x-amzn-principal, target) to
// its id. Called with s.mu held.
func (s *Server) principalCertLocked(arn string) (*certificate, *iotError) {
	prefix := s.iotARN("cert", "")
	if !strings.HasPrefix(arn, prefix) {
		return nil, iotErr("InvalidRequestException", "Principal %q is not a certificate ARN of this account and region (%s<certificateId>).", arn, prefix)
	}
	c := s.certs[strings.TrimPrefix(arn, prefix)]
	if c == nil {
		return nil, iotErr("ResourceNotFoundException", "The certificate given in the principal does not exist.")
	}
	return c, nil
}

func (s *Server) attachThingPrincipal(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.thingLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	c, e := s.principalCertLocked(r.Header.Get("x-amzn-principal"))
	if e != nil {
		return nil, e
	}
	if !contains(t.principals, c.id) {
		t.principals = append(t.principals, c.id)
	}
	return map[string]any{}, nil
}

func (s *Server) detachThingPrincipal(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.thingLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	c, e := s.principalCertLocked(r.Header.Get("x-amzn-principal"))
	if e != nil {
		return nil, e
	}
	t.principals = remove(t.principals, c.id)
	return map[string]any{}, nil
}

func (s *Server) listThingPrincipals(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.thingLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	out := []string{}
	for _, id := range t.principals {
		out = append(out, s.iotARN("cert", id))
	}
	return map[string]any{"principals": out}, nil
}

func (s *Server) listPrincipalThings(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.principalCertLocked(r.Header.Get("x-amzn-principal"))
	if e != nil {
		return nil, e
	}
	out := []string{}
	for _, n := range sortedKeys(s.things) {
		if contains(s.things[n].principals, c.id) {
			out = append(out, n)
		}
	}
	return map[string]any{"things": out}, nil
}

// --- role aliases

func durationIn(in map[string]any, def int) (int, *iotError) {
	d := def
	if v, ok := in["credentialDurationSeconds"].(float64); ok {
		d = int(v)
	}
	if d < 900 || d > 43200 {
		return 0, iotErr("InvalidRequestException", "1 validation error detected: Value '%d' at 'credentialDurationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", d)
	}
	return d, nil
}

func (s *Server) validRoleARN(arn string) *iotError {
	if !regexp.MustCompile(`^arn:aws:iam::\d{12}:role/.+$`).MatchString(arn) {
		return iotErr("InvalidRequestException", "roleArn %q is not an IAM role ARN (arn:aws:iam::<account>:role/<name>).", arn)
	}
	return nil
}

func (s *Server) createRoleAlias(r *http.Request, in map[string]any) (any, *iotError) {
	name := r.PathValue("name")
	if e := validateName(aliasRE, "roleAlias", name); e != nil {
		return nil, e
	}
	arn := strIn(in, "roleArn")
	if e := s.validRoleARN(arn); e != nil {
		return nil, e
	}
	d, e := durationIn(in, 3600)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aliases[name] != nil {
		return nil, alreadyExists("Role alias", name, s.RoleAliasARN(name))
	}
	now := s.now().UTC()
	s.aliases[name] = &roleAlias{name: name, roleARN: arn, duration: d, created: now, modified: now}
	return map[string]any{"roleAlias": name, "roleAliasArn": s.RoleAliasARN(name)}, nil
}

func (s *Server) aliasLocked(name string) (*roleAlias, *iotError) {
	a := s.aliases[name]
	if a == nil {
		return nil, iotErr("ResourceNotFoundException", "Role alias %s does not exist", name)
	}
	return a, nil
}

func (s *Server) describeRoleAlias(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.aliasLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	return map[string]any{"roleAliasDescription": map[string]any{"roleAlias": a.name, "roleAliasArn": s.RoleAliasARN(a.name),
		"roleArn": a.roleARN, "owner": s.account, "credentialDurationSeconds": a.duration,
		"creationDate": epoch(a.created), "lastModifiedDate": epoch(a.modified)}}, nil
}

func (s *Server) updateRoleAlias(r *http.Request, in map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.aliasLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	if arn := strIn(in, "roleArn"); arn != "" {
		if e := s.validRoleARN(arn); e != nil {
			return nil, e
		}
		a.roleARN = arn
	}
	if _, ok := in["credentialDurationSeconds"]; ok {
		d, e := durationIn(in, a.duration)
		if e != nil {
			return nil, e
		}
		a.duration = d
	}
	a.modified = s.now().UTC()
	return map[string]any{"roleAlias": a.name, "roleAliasArn": s.RoleAliasARN(a.name)}, nil
}

func (s *Server) deleteRoleAlias(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.aliasLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	delete(s.aliases, a.name)
	return map[string]any{}, nil
}

func (s *Server) listRoleAliases(*http.Request, map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := sortedKeys(s.aliases)
	if out == nil {
		out = []string{}
	}
	return map[string]any{"roleAliases": out}, nil
}

// --- IoT policies

// parsePolicyDoc parses a policy document as IAM and IoT take it: a JSON
// string holding the document.
func parsePolicyDoc(doc string) (Policy, error) {
	var p Policy
	if strings.TrimSpace(doc) == "" {
		return p, fmt.Errorf("the policy document is empty")
	}
	if !json.Valid([]byte(doc)) {
		return p, fmt.Errorf("the policy document is not valid JSON")
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return p, err
	}
	if len(p.Statement) == 0 {
		return p, fmt.Errorf("the policy document has no Statement")
	}
	for i, st := range p.Statement {
		for _, a := range append(append([]string(nil), st.Action...), st.NotAction...) {
			if a != "*" && !strings.Contains(a, ":") {
				return p, fmt.Errorf("statement %d: action %q must be prefaced by a vendor, e.g. iot:Connect", i, a)
			}
		}
	}
	return p, nil
}

func (s *Server) createIoTPolicy(r *http.Request, in map[string]any) (any, *iotError) {
	name := r.PathValue("name")
	if e := validateName(iotPolicyRE, "policyName", name); e != nil {
		return nil, e
	}
	doc := strIn(in, "policyDocument")
	p, err := parsePolicyDoc(doc)
	if err != nil {
		return nil, iotErr("MalformedPolicyException", "Policy document is malformed: %v", err)
	}
	for _, st := range p.Statement {
		if len(st.Resource) == 0 {
			return nil, iotErr("MalformedPolicyException", "Policy document is malformed: a statement has no Resource")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.iotPols[name] != nil {
		return nil, alreadyExists("Policy", name, s.iotARN("policy", name))
	}
	now := s.now().UTC()
	s.iotPols[name] = &iotPolicy{name: name, doc: doc, p: p, created: now, modified: now}
	return map[string]any{"policyName": name, "policyArn": s.iotARN("policy", name), "policyDocument": doc, "policyVersionId": "1"}, nil
}

func (s *Server) iotPolicyLocked(name string) (*iotPolicy, *iotError) {
	p := s.iotPols[name]
	if p == nil {
		return nil, iotErr("ResourceNotFoundException", "Policy %s does not exist", name)
	}
	return p, nil
}

func (s *Server) getIoTPolicy(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.iotPolicyLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	return map[string]any{"policyName": p.name, "policyArn": s.iotARN("policy", p.name), "policyDocument": p.doc,
		"defaultVersionId": "1", "creationDate": epoch(p.created), "lastModifiedDate": epoch(p.modified), "generationId": thingID("gen/" + p.doc)}, nil
}

func (s *Server) deleteIoTPolicy(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.iotPolicyLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	for _, c := range s.certs {
		if contains(c.policies, p.name) {
			return nil, iotErr("DeleteConflictException", "The policy cannot be deleted as the policy is attached to one or more principals (name=%s)", p.name)
		}
	}
	delete(s.iotPols, p.name)
	return map[string]any{}, nil
}

func (s *Server) listIoTPolicies(*http.Request, map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, n := range sortedKeys(s.iotPols) {
		out = append(out, map[string]string{"policyName": n, "policyArn": s.iotARN("policy", n)})
	}
	return map[string]any{"policies": out}, nil
}

func (s *Server) attachIoTPolicy(r *http.Request, in map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.iotPolicyLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	c, e := s.principalCertLocked(strIn(in, "target"))
	if e != nil {
		return nil, e
	}
	if !contains(c.policies, p.name) {
		c.policies = append(c.policies, p.name)
	}
	return nil, nil
}

func (s *Server) detachIoTPolicy(r *http.Request, in map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.iotPolicyLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	c, e := s.principalCertLocked(strIn(in, "target"))
	if e != nil {
		return nil, e
	}
	c.policies = remove(c.policies, p.name)
	return nil, nil
}

func (s *Server) listAttachedPolicies(r *http.Request, _ map[string]any) (any, *iotError) {
	target, _ := url.PathUnescape(r.PathValue("name"))
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.principalCertLocked(target)
	if e != nil {
		return nil, e
	}
	out := []any{}
	for _, n := range c.policies {
		out = append(out, map[string]string{"policyName": n, "policyArn": s.iotARN("policy", n)})
	}
	return map[string]any{"policies": out}, nil
}

func (s *Server) listTargetsForPolicy(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.iotPolicyLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	out := []string{}
	for _, id := range sortedKeys(s.certs) {
		if contains(s.certs[id].policies, p.name) {
			out = append(out, s.iotARN("cert", id))
		}
	}
	return map[string]any{"targets": out}, nil
}

// --- certificates

// createKeysAndCertificate makes a key pair and a certificate signed by the
// Server's CA; certificateId is the SHA-256 of the DER, as AWS computes it.
func (s *Server) createKeysAndCertificate(r *http.Request, _ map[string]any) (any, *iotError) {
	ca, err := s.deviceCA()
	if err != nil {
		return nil, iotErr("InternalFailureException", "making the CA: %v", err)
	}
	leaf, err := ca.Issue(IssueOptions{CommonName: "AWS IoT Certificate"})
	if err != nil {
		return nil, iotErr("InternalFailureException", "making the certificate: %v", err)
	}
	pub, err := publicKeyPEM(leaf.CertPEM)
	if err != nil {
		return nil, iotErr("InternalFailureException", "%v", err)
	}
	status := CertInactive
	if v := r.URL.Query().Get("setAsActive"); v == "true" {
		status = CertActive
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	s.certs[leaf.ID] = &certificate{id: leaf.ID, pem: string(leaf.CertPEM), status: status, created: now, modified: now}
	return map[string]any{"certificateArn": s.iotARN("cert", leaf.ID), "certificateId": leaf.ID, "certificatePem": string(leaf.CertPEM),
		"keyPair": map[string]string{"PublicKey": pub, "PrivateKey": string(leaf.KeyPEM)}}, nil
}

// deviceCA is Options.CA, or one made on first use.
func (s *Server) deviceCA() (*CA, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ca == nil {
		ca, err := NewCA("kvslocal AWS IoT device CA")
		if err != nil {
			return nil, err
		}
		s.ca = ca
	}
	return s.ca, nil
}

func (s *Server) certLocked(id string) (*certificate, *iotError) {
	if !certIDRE.MatchString(id) {
		return nil, iotErr("InvalidRequestException", "1 validation error detected: Value '%s' at 'certificateId' failed to satisfy constraint: Member must satisfy regular expression pattern: (0x)?[a-fA-F0-9]+", id)
	}
	c := s.certs[strings.ToLower(id)]
	if c == nil {
		return nil, iotErr("ResourceNotFoundException", "The specified resource does not exist")
	}
	return c, nil
}

func (s *Server) describeCertificate(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.certLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	d := map[string]any{"certificateArn": s.iotARN("cert", c.id), "certificateId": c.id, "status": c.status, "certificatePem": c.pem,
		"ownedBy": s.account, "creationDate": epoch(c.created), "lastModifiedDate": epoch(c.modified), "customerVersion": 1,
		"transferData": map[string]any{}, "generationId": thingID("gen/" + c.id + c.status), "certificateMode": "DEFAULT"}
	if nb, na, ok := certValidity(c.pem); ok {
		d["validity"] = map[string]any{"notBefore": epoch(nb), "notAfter": epoch(na)}
	}
	return map[string]any{"certificateDescription": d}, nil
}

// updateCertificate sets ACTIVE, INACTIVE or REVOKED; a device is refused at
// its next handshake with the credentials provider.
func (s *Server) updateCertificate(r *http.Request, _ map[string]any) (any, *iotError) {
	status := r.URL.Query().Get("newStatus")
	switch status {
	case CertActive, CertInactive, CertRevoked:
	default:
		return nil, iotErr("InvalidRequestException", "1 validation error detected: Value '%s' at 'newStatus' failed to satisfy constraint: Member must satisfy enum value set: [ACTIVE, INACTIVE, REVOKED]", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.certLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	if c.status == CertRevoked && status == CertActive {
		return nil, iotErr("CertificateStateException", "Certificate %s is revoked and cannot be activated.", c.id)
	}
	c.status, c.modified = status, s.now().UTC()
	return nil, nil
}

func (s *Server) deleteCertificate(r *http.Request, _ map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.certLocked(r.PathValue("name"))
	if e != nil {
		return nil, e
	}
	if c.status == CertActive {
		return nil, iotErr("CertificateStateException", "Certificate must be deactivated (not ACTIVE) before deletion.")
	}
	if len(c.policies) > 0 && r.URL.Query().Get("forceDelete") != "true" {
		return nil, iotErr("DeleteConflictException", "Certificate policies must be detached before deletion (arn: %s)", s.iotARN("cert", c.id))
	}
	for _, t := range s.things {
		if contains(t.principals, c.id) {
			return nil, iotErr("DeleteConflictException", "Things must be detached before deletion (arn: %s)", s.iotARN("cert", c.id))
		}
	}
	delete(s.certs, c.id)
	return nil, nil
}

func (s *Server) listCertificates(*http.Request, map[string]any) (any, *iotError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, id := range sortedKeys(s.certs) {
		c := s.certs[id]
		out = append(out, map[string]any{"certificateArn": s.iotARN("cert", id), "certificateId": id, "status": c.status,
			"certificateMode": "DEFAULT", "creationDate": epoch(c.created)})
	}
	return map[string]any{"certificates": out}, nil
}

// describeEndpoint answers iot:CredentialProvider with the credentials
// provider's host:port (StartIoT), which the iot-certificate property and
// curl take as they are.
func (s *Server) describeEndpoint(r *http.Request, _ map[string]any) (any, *iotError) {
	typ := r.URL.Query().Get("endpointType")
	s.mu.Lock()
	ep := s.iotEP
	s.mu.Unlock()
	switch typ {
	case "iot:CredentialProvider":
		if ep == "" {
			return nil, iotErr("InvalidRequestException", "The credentials provider is not running (kvslocal serves it when started with its IoT side).")
		}
		return map[string]any{"endpointAddress": ep}, nil
	case "", "iot:Data", "iot:Data-ATS", "iot:Jobs":
		return nil, iotErr("InvalidRequestException", "Endpoint type %q (MQTT) is not served here: only iot:CredentialProvider is.", typ)
	}
	return nil, iotErr("InvalidRequestException", "1 validation error detected: Value '%s' at 'endpointType' is not one of iot:Data, iot:Data-ATS, iot:CredentialProvider, iot:Jobs", typ)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
