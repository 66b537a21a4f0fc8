package iam

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// The IAM API (awsquery: a form in, XML out): roles with trust policies,
// inline and managed policies, users and their access keys. Every call is
// authorized as iam:<Action>, and every change applies to the next call of
// any service (the policies are looked up on each call).

const (
	iamNS          = "https://iam.amazonaws.com/doc/2010-05-08/"
	iamEventSource = "iam.amazonaws.com"
	iamTime        = "2006-01-02T15:04:05Z"
)

var iamNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
var iamPolicyNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)

// x builds XML: x("Name", "text") or x("Name", x(…), x(…)) for elements.
func x(name string, kids ...string) string {
	return "<" + name + ">" + strings.Join(kids, "") + "</" + name + ">"
}

// t is an element with escaped text (characters XML cannot hold, such as
// control characters from a fuzzed request, become U+FFFD).
func t(name, text string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(text))
	return x(name, b.String())
}

func members(items []string) string { return strings.Join(items, "") }

func encodeDoc(doc string) string { return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20") }

func writeQueryXML(w http.ResponseWriter, ns, op, result string) {
	w.Header().Set("Content-Type", "text/xml")
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<` + op + `Response xmlns="` + ns + `">`
	if result != "" {
		body += x(op+"Result", result)
	}
	body += x("ResponseMetadata", t("RequestId", requestID())) + "</" + op + "Response>"
	w.Write([]byte(body))
}

func writeQueryError(w http.ResponseWriter, ns string, e stsError) {
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ErrorResponse xmlns="` + ns + `">` +
		x("Error", t("Type", typ), t("Code", e.code), t("Message", e.message)) + t("RequestId", requestID()) + `</ErrorResponse>`))
}

func iamErr(status int, code, format string, args ...any) *stsError {
	return &stsError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func noSuch(kind, name string) *stsError {
	return iamErr(404, "NoSuchEntity", "The %s with name %s cannot be found.", kind, name)
}

// queryAuthError maps a SigV4 failure to the awsquery services' codes.
func queryAuthError(e *kvslocal.SigV4Error) stsError {
	switch e.Failure {
	case kvslocal.SigV4MissingAuth:
		return stsError{403, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	case kvslocal.SigV4Incomplete:
		return stsError{400, "IncompleteSignature", e.Message}
	case kvslocal.SigV4UnknownKey:
		return stsError{403, "InvalidClientTokenId", e.Message}
	case kvslocal.SigV4ExpiredToken:
		return stsError{403, "ExpiredToken", e.Message}
	}
	return stsError{403, "SignatureDoesNotMatch", e.Message}
}

// queryParams is a form as audit parameters (camelCase names, as
// CloudTrail writes them), without Action and Version.
func queryParams(form url.Values) map[string]any {
	out := map[string]any{}
	for k, v := range form {
		if k == "Action" || k == "Version" || len(k) == 0 {
			continue
		}
		out[strings.ToLower(k[:1])+k[1:]] = v[0]
	}
	return out
}

// iamService is IAM as a kvslocal.Service.
type iamService struct{ s *Server }

func (svc iamService) AuthError(w http.ResponseWriter, r *http.Request, body []byte, e *kvslocal.SigV4Error) {
	form, _ := url.ParseQuery(string(body))
	kvslocal.NoteAuditCall(w, iamEventSource, form.Get("Action"), nil)
	writeQueryError(w, iamNS, queryAuthError(e))
}

type iamAction func(s *Server, form url.Values) (string, *stsError)

// iamActions are the actions, each with the resource it is authorized on.
var iamActions = map[string]struct {
	run      iamAction
	resource func(s *Server, form url.Values) string
}{
	"CreateRole":               {(*Server).iamCreateRole, roleRes},
	"GetRole":                  {(*Server).iamGetRole, roleRes},
	"ListRoles":                {(*Server).iamListRoles, nil},
	"DeleteRole":               {(*Server).iamDeleteRole, roleRes},
	"UpdateAssumeRolePolicy":   {(*Server).iamUpdateAssumeRolePolicy, roleRes},
	"PutRolePolicy":            {(*Server).iamPutRolePolicy, roleRes},
	"GetRolePolicy":            {(*Server).iamGetRolePolicy, roleRes},
	"ListRolePolicies":         {(*Server).iamListRolePolicies, roleRes},
	"DeleteRolePolicy":         {(*Server).iamDeleteRolePolicy, roleRes},
	"AttachRolePolicy":         {(*Server).iamAttachRolePolicy, roleRes},
	"DetachRolePolicy":         {(*Server).iamDetachRolePolicy, roleRes},
	"ListAttachedRolePolicies": {(*Server).iamListAttachedRolePolicies, roleRes},
	"CreateUser":               {(*Server).iamCreateUser, userRes},
	"GetUser":                  {(*Server).iamGetUser, userRes},
	"ListUsers":                {(*Server).iamListUsers, nil},
	"DeleteUser":               {(*Server).iamDeleteUser, userRes},
	"CreateAccessKey":          {(*Server).iamCreateAccessKey, userRes},
	"ListAccessKeys":           {(*Server).iamListAccessKeys, userRes},
	"DeleteAccessKey":          {(*Server).iamDeleteAccessKey, userRes},
	"PutUserPolicy":            {(*Server).iamPutUserPolicy, userRes},
	"GetUserPolicy":            {(*Server).iamGetUserPolicy, userRes},
	"ListUserPolicies":         {(*Server).iamListUserPolicies, userRes},
	"DeleteUserPolicy":         {(*Server).iamDeleteUserPolicy, userRes},
	"AttachUserPolicy":         {(*Server).iamAttachUserPolicy, userRes},
	"DetachUserPolicy":         {(*Server).iamDetachUserPolicy, userRes},
	"ListAttachedUserPolicies": {(*Server).iamListAttachedUserPolicies, userRes},
	"CreatePolicy":             {(*Server).iamCreatePolicy, policyRes},
	"GetPolicy":                {(*Server).iamGetPolicy, policyArnRes},
	"GetPolicyVersion":         {(*Server).iamGetPolicyVersion, policyArnRes},
	"ListPolicies":             {(*Server).iamListPolicies, nil},
	"DeletePolicy":             {(*Server).iamDeletePolicy, policyArnRes},
}

func roleRes(s *Server, f url.Values) string { return s.RoleARN(f.Get("RoleName")) }
func userRes(s *Server, f url.Values) string {
	if f.Get("UserName") == "" {
		return "*"
	}
	return s.userARN(f.Get("UserName"))
}
func policyRes(s *Server, f url.Values) string {
	return "arn:aws:iam::" + s.account + ":policy/" + f.Get("PolicyName")
}
func policyArnRes(_ *Server, f url.Values) string { return f.Get("PolicyArn") }

func (svc iamService) ServeAWS(w http.ResponseWriter, r *http.Request, body []byte, call kvslocal.Call) {
	s := svc.s
	form, err := url.ParseQuery(string(body))
	if err != nil || r.Method != http.MethodPost {
		kvslocal.NoteAuditCall(w, iamEventSource, "", nil)
		writeQueryError(w, iamNS, stsError{400, "MalformedQueryString", "IAM takes POST / with a form body (awsquery)."})
		return
	}
	op := form.Get("Action")
	kvslocal.NoteAuditCall(w, iamEventSource, op, queryParams(form))
	a, ok := iamActions[op]
	if !ok {
		writeQueryError(w, iamNS, stsError{400, "InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", op, form.Get("Version"))})
		return
	}
	resource := "*"
	if a.resource != nil {
		resource = a.resource(s, form)
	}
	if err := s.Authorize(kvslocal.AuthzRequest{AccessKeyID: call.AccessKeyID, Action: "iam:" + op, Resource: resource}); err != nil {
		writeQueryError(w, iamNS, stsError{403, "AccessDenied", err.Error()})
		return
	}
	result, e := a.run(s, form)
	if e != nil {
		writeQueryError(w, iamNS, *e)
		return
	}
	writeQueryXML(w, iamNS, op, result)
}

// stsService is STS as a kvslocal.Service.
type stsService struct{ s *Server }

func (svc stsService) AuthError(w http.ResponseWriter, r *http.Request, body []byte, e *kvslocal.SigV4Error) {
	form, _ := url.ParseQuery(string(body))
	kvslocal.NoteAuditCall(w, "sts.amazonaws.com", form.Get("Action"), nil)
	writeSTSError(w, queryAuthError(e))
}

func (svc stsService) ServeAWS(w http.ResponseWriter, r *http.Request, body []byte, call kvslocal.Call) {
	form, err := url.ParseQuery(string(body))
	if err != nil || r.Method != http.MethodPost {
		kvslocal.NoteAuditCall(w, "sts.amazonaws.com", "", nil)
		writeSTSError(w, stsError{400, "MalformedQueryString", "STS takes POST / with a form body (awsquery)."})
		return
	}
	kvslocal.NoteAuditCall(w, "sts.amazonaws.com", form.Get("Action"), queryParams(form))
	svc.s.stsAction(w, call.AccessKeyID, form)
}

// Services are the IoT control plane (signed as iot or execute-api), IAM
// and STS, for kvslocal.Config.Services: one URL serves them all.
func (s *Server) Services() map[string]kvslocal.Service {
	iot := newIoTService(s)
	return map[string]kvslocal.Service{"iot": iot, "execute-api": iot, "iam": iamService{s}, "sts": stsService{s}}
}

// --- policy documents

// parseIdentityPolicy parses a permissions policy: statements need
// resources and name no principal.
func parseIdentityPolicy(doc string) (Policy, *stsError) {
	p, err := parsePolicyDoc(doc)
	if err != nil {
		return p, iamErr(400, "MalformedPolicyDocument", "Syntax errors in policy: %v", err)
	}
	for _, st := range p.Statement {
		if st.Principal != nil {
			return p, iamErr(400, "MalformedPolicyDocument", "Policy document should not specify a principal.")
		}
		if len(st.Resource) == 0 {
			return p, iamErr(400, "MalformedPolicyDocument", "Policy statement must contain resources.")
		}
	}
	return p, nil
}

// parseTrustPolicy parses a role's trust policy: every statement names a
// principal.
func parseTrustPolicy(doc string) (Policy, *stsError) {
	p, err := parsePolicyDoc(doc)
	if err != nil {
		return p, iamErr(400, "MalformedPolicyDocument", "Syntax errors in policy: %v", err)
	}
	for _, st := range p.Statement {
		if st.Principal == nil {
			return p, iamErr(400, "MalformedPolicyDocument", "Missing required field Principal")
		}
		if len(st.Resource) > 0 {
			return p, iamErr(400, "MalformedPolicyDocument", "Has prohibited field Resource")
		}
	}
	return p, nil
}

func validName(re *regexp.Regexp, field, v string) *stsError {
	if !re.MatchString(v) {
		return iamErr(400, "ValidationError", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", v, field)
	}
	return nil
}

// --- roles

func (s *Server) roleXML(r *role) string {
	desc := ""
	if r.description != "" {
		desc = t("Description", r.description)
	}
	return t("Path", r.path) + t("RoleName", r.name) + t("RoleId", r.id) + t("Arn", s.RoleARN(r.name)) +
		t("CreateDate", r.created.Format(iamTime)) + t("AssumeRolePolicyDocument", encodeDoc(r.trust.doc)) + desc +
		t("MaxSessionDuration", strconv.Itoa(r.maxSession))
}

func (s *Server) iamCreateRole(f url.Values) (string, *stsError) {
	name := f.Get("RoleName")
	if e := validName(iamNameRE, "roleName", name); e != nil {
		return "", e
	}
	p, e := parseTrustPolicy(f.Get("AssumeRolePolicyDocument"))
	if e != nil {
		return "", e
	}
	max := 3600
	if v := f.Get("MaxSessionDuration"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 3600 || n > 43200 {
			return "", iamErr(400, "ValidationError", "1 validation error detected: Value '%s' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200", v)
		}
		max = n
	}
	path := f.Get("Path")
	if path == "" {
		path = "/"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[name] != nil {
		return "", iamErr(409, "EntityAlreadyExists", "Role with name %s already exists.", name)
	}
	r := &role{name: name, id: roleID(name), path: path, description: f.Get("Description"), created: s.now().UTC(),
		trust: namedPolicy{doc: f.Get("AssumeRolePolicyDocument"), p: p}, maxSession: max}
	s.roles[name] = r
	return x("Role", s.roleXML(r)), nil
}

func (s *Server) roleLocked(name string) (*role, *stsError) {
	r := s.roles[name]
	if r == nil {
		return nil, noSuch("role", name)
	}
	return r, nil
}

func (s *Server) iamGetRole(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(f.Get("RoleName"))
	if e != nil {
		return "", e
	}
	return x("Role", s.roleXML(r)), nil
}

func (s *Server) iamListRoles(url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []string
	for _, n := range sortedKeys(s.roles) {
		items = append(items, x("member", s.roleXML(s.roles[n])))
	}
	return x("Roles", members(items)) + t("IsTruncated", "false"), nil
}

func (s *Server) iamDeleteRole(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(f.Get("RoleName"))
	if e != nil {
		return "", e
	}
	if len(r.inline) > 0 || len(r.attached) > 0 {
		return "", iamErr(409, "DeleteConflict", "Cannot delete entity, must delete policies first.")
	}
	delete(s.roles, r.name)
	return "", nil
}

func (s *Server) iamUpdateAssumeRolePolicy(f url.Values) (string, *stsError) {
	p, e := parseTrustPolicy(f.Get("PolicyDocument"))
	if e != nil {
		return "", e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(f.Get("RoleName"))
	if e != nil {
		return "", e
	}
	r.trust = namedPolicy{doc: f.Get("PolicyDocument"), p: p}
	return "", nil
}

// putInline adds or replaces an inline policy.
func putInline(list []namedPolicy, name, doc string, p Policy) []namedPolicy {
	if i := findNamed(list, name); i >= 0 {
		list[i] = namedPolicy{name: name, doc: doc, p: p}
		return list
	}
	return append(list, namedPolicy{name: name, doc: doc, p: p})
}

func (s *Server) iamPutRolePolicy(f url.Values) (string, *stsError) {
	name := f.Get("PolicyName")
	if e := validName(iamPolicyNameRE, "policyName", name); e != nil {
		return "", e
	}
	p, e := parseIdentityPolicy(f.Get("PolicyDocument"))
	if e != nil {
		return "", e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(f.Get("RoleName"))
	if e != nil {
		return "", e
	}
	r.inline = putInline(r.inline, name, f.Get("PolicyDocument"), p)
	return "", nil
}

func (s *Server) iamGetRolePolicy(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(f.Get("RoleName"))
	if e != nil {
		return "", e
	}
	i := findNamed(r.inline, f.Get("PolicyName"))
	if i < 0 {
		return "", iamErr(404, "NoSuchEntity", "The role policy with name %s cannot be found.", f.Get("PolicyName"))
	}
	return t("RoleName", r.name) + t("PolicyName", r.inline[i].name) + t("PolicyDocument", encodeDoc(r.inline[i].doc)), nil
}

func inlineNames(list []namedPolicy) string {
	var items []string
	for _, p := range list {
		items = append(items, t("member", p.name))
	}
	return x("PolicyNames", members(items)) + t("IsTruncated", "false")
}

func (s *Server) iamListRolePolicies(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(f.Get("RoleName"))
	if e != nil {
		return "", e
	}
	return inlineNames(r.inline), nil
}

func (s *Server) iamDeleteRolePolicy(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(f.Get("RoleName"))
	if e != nil {
		return "", e
	}
	i := findNamed(r.inline, f.Get("PolicyName"))
	if i < 0 {
		return "", iamErr(404, "NoSuchEntity", "The role policy with name %s cannot be found.", f.Get("PolicyName"))
	}
	r.inline = append(r.inline[:i:i], r.inline[i+1:]...)
	return "", nil
}

func (s *Server) managedLocked(arn string) (*managed, *stsError) {
	m := s.managed[arn]
	if m == nil {
		return nil, iamErr(404, "NoSuchEntity", "Policy %s does not exist or is not attachable.", arn)
	}
	return m, nil
}

func (s *Server) attachedXML(arns []string) string {
	var items []string
	for _, a := range arns {
		if m := s.managed[a]; m != nil {
			items = append(items, x("member", t("PolicyName", m.name)+t("PolicyArn", a)))
		}
	}
	return x("AttachedPolicies", members(items)) + t("IsTruncated", "false")
}

func (s *Server) iamAttachRolePolicy(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(f.Get("RoleName"))
	if e != nil {
		return "", e
	}
	m, e := s.managedLocked(f.Get("PolicyArn"))
	if e != nil {
		return "", e
	}
	if !contains(r.attached, m.arn) {
		r.attached = append(r.attached, m.arn)
	}
	return "", nil
}

func (s *Server) iamDetachRolePolicy(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(f.Get("RoleName"))
	if e != nil {
		return "", e
	}
	if !contains(r.attached, f.Get("PolicyArn")) {
		return "", iamErr(404, "NoSuchEntity", "Policy %s was not found.", f.Get("PolicyArn"))
	}
	r.attached = remove(r.attached, f.Get("PolicyArn"))
	return "", nil
}

func (s *Server) iamListAttachedRolePolicies(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(f.Get("RoleName"))
	if e != nil {
		return "", e
	}
	return s.attachedXML(r.attached), nil
}

// --- users

func (s *Server) userXML(u *user) string {
	return t("Path", u.path) + t("UserName", u.name) + t("UserId", u.id) + t("Arn", s.userARN(u.name)) + t("CreateDate", u.created.Format(iamTime))
}

func (s *Server) iamCreateUser(f url.Values) (string, *stsError) {
	name := f.Get("UserName")
	if e := validName(iamNameRE, "userName", name); e != nil {
		return "", e
	}
	path := f.Get("Path")
	if path == "" {
		path = "/"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[name] != nil {
		return "", iamErr(409, "EntityAlreadyExists", "User with name %s already exists.", name)
	}
	u := &user{name: name, id: userID(name), path: path, created: s.now().UTC()}
	s.users[name] = u
	return x("User", s.userXML(u)), nil
}

// userLocked finds a user; an empty name is the caller's own user.
func (s *Server) userLocked(name string) (*user, *stsError) {
	u := s.users[name]
	if u == nil {
		return nil, noSuch("user", name)
	}
	return u, nil
}

func (s *Server) iamGetUser(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := f.Get("UserName")
	if name == "" {
		return "", iamErr(400, "ValidationError", "GetUser without UserName is not supported here: name the user.")
	}
	u, e := s.userLocked(name)
	if e != nil {
		return "", e
	}
	return x("User", s.userXML(u)), nil
}

func (s *Server) iamListUsers(url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []string
	for _, n := range sortedKeys(s.users) {
		items = append(items, x("member", s.userXML(s.users[n])))
	}
	return x("Users", members(items)) + t("IsTruncated", "false"), nil
}

func (s *Server) iamDeleteUser(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, e := s.userLocked(f.Get("UserName"))
	if e != nil {
		return "", e
	}
	if len(u.inline) > 0 || len(u.attached) > 0 {
		return "", iamErr(409, "DeleteConflict", "Cannot delete entity, must delete policies first.")
	}
	for _, k := range s.keys {
		if k.user == u.name {
			return "", iamErr(409, "DeleteConflict", "Cannot delete entity, must delete access keys first.")
		}
	}
	delete(s.users, u.name)
	return "", nil
}

func (s *Server) iamCreateAccessKey(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, e := s.userLocked(f.Get("UserName"))
	if e != nil {
		return "", e
	}
	n := 0
	for _, k := range s.keys {
		if k.user == u.name {
			n++
		}
	}
	if n >= 2 {
		return "", iamErr(409, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")
	}
	k := &accessKey{id: "AKIA" + randomID(16), secret: randomSecret(30), user: u.name, status: "Active", created: s.now().UTC()}
	s.keys[k.id] = k
	return x("AccessKey", t("UserName", u.name)+t("AccessKeyId", k.id)+t("Status", k.status)+t("SecretAccessKey", k.secret)+
		t("CreateDate", k.created.Format(iamTime))), nil
}

func (s *Server) iamListAccessKeys(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, e := s.userLocked(f.Get("UserName"))
	if e != nil {
		return "", e
	}
	var items []string
	for _, id := range sortedKeys(s.keys) {
		if k := s.keys[id]; k.user == u.name {
			items = append(items, x("member", t("UserName", u.name)+t("AccessKeyId", k.id)+t("Status", k.status)+t("CreateDate", k.created.Format(iamTime))))
		}
	}
	return x("AccessKeyMetadata", members(items)) + t("IsTruncated", "false"), nil
}

func (s *Server) iamDeleteAccessKey(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[f.Get("AccessKeyId")]
	if k == nil || (f.Get("UserName") != "" && k.user != f.Get("UserName")) {
		return "", iamErr(404, "NoSuchEntity", "The Access Key with id %s cannot be found.", f.Get("AccessKeyId"))
	}
	delete(s.keys, k.id)
	return "", nil
}

func (s *Server) iamPutUserPolicy(f url.Values) (string, *stsError) {
	name := f.Get("PolicyName")
	if e := validName(iamPolicyNameRE, "policyName", name); e != nil {
		return "", e
	}
	p, e := parseIdentityPolicy(f.Get("PolicyDocument"))
	if e != nil {
		return "", e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, e := s.userLocked(f.Get("UserName"))
	if e != nil {
		return "", e
	}
	u.inline = putInline(u.inline, name, f.Get("PolicyDocument"), p)
	return "", nil
}

func (s *Server) iamGetUserPolicy(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, e := s.userLocked(f.Get("UserName"))
	if e != nil {
		return "", e
	}
	i := findNamed(u.inline, f.Get("PolicyName"))
	if i < 0 {
		return "", iamErr(404, "NoSuchEntity", "The user policy with name %s cannot be found.", f.Get("PolicyName"))
	}
	return t("UserName", u.name) + t("PolicyName", u.inline[i].name) + t("PolicyDocument", encodeDoc(u.inline[i].doc)), nil
}

func (s *Server) iamListUserPolicies(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, e := s.userLocked(f.Get("UserName"))
	if e != nil {
		return "", e
	}
	return inlineNames(u.inline), nil
}

func (s *Server) iamDeleteUserPolicy(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, e := s.userLocked(f.Get("UserName"))
	if e != nil {
		return "", e
	}
	i := findNamed(u.inline, f.Get("PolicyName"))
	if i < 0 {
		return "", iamErr(404, "NoSuchEntity", "The user policy with name %s cannot be found.", f.Get("PolicyName"))
	}
	u.inline = append(u.inline[:i:i], u.inline[i+1:]...)
	return "", nil
}

func (s *Server) iamAttachUserPolicy(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, e := s.userLocked(f.Get("UserName"))
	if e != nil {
		return "", e
	}
	m, e := s.managedLocked(f.Get("PolicyArn"))
	if e != nil {
		return "", e
	}
	if !contains(u.attached, m.arn) {
		u.attached = append(u.attached, m.arn)
	}
	return "", nil
}

func (s *Server) iamDetachUserPolicy(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, e := s.userLocked(f.Get("UserName"))
	if e != nil {
		return "", e
	}
	if !contains(u.attached, f.Get("PolicyArn")) {
		return "", iamErr(404, "NoSuchEntity", "Policy %s was not found.", f.Get("PolicyArn"))
	}
	u.attached = remove(u.attached, f.Get("PolicyArn"))
	return "", nil
}

func (s *Server) iamListAttachedUserPolicies(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, e := s.userLocked(f.Get("UserName"))
	if e != nil {
		return "", e
	}
	return s.attachedXML(u.attached), nil
}

// --- managed policies (one version, v1)

func (s *Server) attachmentsLocked(arn string) int {
	n := 0
	for _, u := range s.users {
		if contains(u.attached, arn) {
			n++
		}
	}
	for _, r := range s.roles {
		if contains(r.attached, arn) {
			n++
		}
	}
	return n
}

func (s *Server) policyXML(m *managed) string {
	desc := ""
	if m.description != "" {
		desc = t("Description", m.description)
	}
	return t("PolicyName", m.name) + t("PolicyId", m.id) + t("Arn", m.arn) + t("Path", m.path) + t("DefaultVersionId", "v1") +
		t("AttachmentCount", strconv.Itoa(s.attachmentsLocked(m.arn))) + t("PermissionsBoundaryUsageCount", "0") +
		t("IsAttachable", "true") + desc + t("CreateDate", m.created.Format(iamTime)) + t("UpdateDate", m.updated.Format(iamTime))
}

func (s *Server) iamCreatePolicy(f url.Values) (string, *stsError) {
	name := f.Get("PolicyName")
	if e := validName(iamPolicyNameRE, "policyName", name); e != nil {
		return "", e
	}
	p, e := parseIdentityPolicy(f.Get("PolicyDocument"))
	if e != nil {
		return "", e
	}
	path := f.Get("Path")
	if path == "" {
		path = "/"
	}
	arn := "arn:aws:iam::" + s.account + ":policy" + path + name
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.managed[arn] != nil {
		return "", iamErr(409, "EntityAlreadyExists", "A policy called %s already exists. Duplicate names are not allowed.", name)
	}
	now := s.now().UTC()
	m := &managed{name: name, arn: arn, id: "ANPA" + strings.ToUpper(randomID(17)), path: path, description: f.Get("Description"),
		doc: f.Get("PolicyDocument"), p: p, created: now, updated: now}
	s.managed[arn] = m
	return x("Policy", s.policyXML(m)), nil
}

func (s *Server) iamGetPolicy(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := s.managedLocked(f.Get("PolicyArn"))
	if e != nil {
		return "", e
	}
	return x("Policy", s.policyXML(m)), nil
}

func (s *Server) iamGetPolicyVersion(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := s.managedLocked(f.Get("PolicyArn"))
	if e != nil {
		return "", e
	}
	if v := f.Get("VersionId"); v != "v1" {
		return "", iamErr(404, "NoSuchEntity", "Policy %s version %s does not exist or is not attachable.", m.arn, v)
	}
	return x("PolicyVersion", t("Document", encodeDoc(m.doc))+t("VersionId", "v1")+t("IsDefaultVersion", "true")+t("CreateDate", m.created.Format(iamTime))), nil
}

func (s *Server) iamListPolicies(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []string
	for _, a := range sortedKeys(s.managed) {
		items = append(items, x("member", s.policyXML(s.managed[a])))
	}
	return x("Policies", members(items)) + t("IsTruncated", "false"), nil
}

func (s *Server) iamDeletePolicy(f url.Values) (string, *stsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := s.managedLocked(f.Get("PolicyArn"))
	if e != nil {
		return "", e
	}
	if s.attachmentsLocked(m.arn) > 0 {
		return "", iamErr(409, "DeleteConflict", "Cannot delete a policy attached to entities.")
	}
	delete(s.managed, m.arn)
	return "", nil
}
