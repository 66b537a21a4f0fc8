package kvslocal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// The KMS API (awsJson1_1: POST / with X-Amz-Target: TrentService.<Op> and a
// JSON body; errors are {"__type": code, "message": …}), over the key store
// of kms.go, so that customer-managed keys can be made with aws kms and
// named in create-stream --kms-key-id. Every call is authorized as
// kms:<Op> on the key's ARN (* for CreateKey, ListKeys, ListAliases).

const kmsTargetPrefix = "TrentService."

// kmsError is a KMS exception.
type kmsError struct {
	status int
	code   string
	msg    string
}

func kmsErr(code, format string, args ...any) *kmsError {
	st := http.StatusBadRequest
	if code == "KMSInternalException" {
		st = http.StatusInternalServerError
	}
	return &kmsError{status: st, code: code, msg: fmt.Sprintf(format, args...)}
}

func writeKMSError(w http.ResponseWriter, e *kmsError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": e.msg})
}

// kmsService is the endpoint's KMS as a Service (route.go).
type kmsService struct{ s *Server }

var kmsAuthCodes = map[SigV4Failure]string{
	SigV4MissingAuth:  "MissingAuthenticationTokenException",
	SigV4Incomplete:   "IncompleteSignatureException",
	SigV4UnknownKey:   "UnrecognizedClientException",
	SigV4ExpiredToken: "ExpiredTokenException",
	SigV4Mismatch:     "InvalidSignatureException",
}

func (k kmsService) AuthError(w http.ResponseWriter, r *http.Request, _ []byte, e *SigV4Error) {
	NoteAuditCall(w, "", kmsOperation(r), nil)
	writeKMSError(w, &kmsError{status: http.StatusBadRequest, code: kmsAuthCodes[e.Failure], msg: e.Message})
}

// kmsOperation is the operation X-Amz-Target names.
func kmsOperation(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("X-Amz-Target"), kmsTargetPrefix)
}

// kmsOps are the operations; each returns the key ARN it acts on ("" for
// none) for authorization, and its answer.
var kmsOps = map[string]struct {
	resolve func(k *KMS, in map[string]any) (string, *kmsError) // the resource to authorize
	run     func(k *KMS, in map[string]any) (any, *kmsError)
}{
	"CreateKey":           {nil, (*KMS).apiCreateKey},
	"ListKeys":            {nil, (*KMS).apiListKeys},
	"ListAliases":         {nil, (*KMS).apiListAliases},
	"DescribeKey":         {keyParam("KeyId"), (*KMS).apiDescribeKey},
	"CreateAlias":         {keyParam("TargetKeyId"), (*KMS).apiCreateAlias},
	"DeleteAlias":         {keyParam("AliasName"), (*KMS).apiDeleteAlias},
	"DisableKey":          {keyParam("KeyId"), stateChange(KeyDisabled)},
	"EnableKey":           {keyParam("KeyId"), stateChange(KeyEnabled)},
	"ScheduleKeyDeletion": {keyParam("KeyId"), (*KMS).apiScheduleKeyDeletion},
	"CancelKeyDeletion":   {keyParam("KeyId"), (*KMS).apiCancelKeyDeletion},
}

func (k kmsService) ServeAWS(w http.ResponseWriter, r *http.Request, body []byte, call Call) {
	s := k.s
	op := kmsOperation(r)
	var in map[string]any
	NoteAuditCall(w, "", op, nil)
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("X-Amz-Target"), kmsTargetPrefix) {
		writeKMSError(w, kmsErr("UnknownOperationException", "KMS takes POST / with X-Amz-Target: TrentService.<Operation> (awsJson1_1)."))
		return
	}
	if err := json.Unmarshal(body, &in); err != nil || in == nil {
		writeKMSError(w, kmsErr("SerializationException", "The request body is not a JSON object."))
		return
	}
	NoteAuditCall(w, "", "", copyMap(in))
	o, ok := kmsOps[op]
	if !ok {
		writeKMSError(w, kmsErr("UnknownOperationException", "%s is not an operation of KMS here.", op))
		return
	}
	resource := "*"
	if o.resolve != nil {
		arn, e := o.resolve(s.kms, in)
		if e != nil {
			writeKMSError(w, e)
			return
		}
		resource = arn
	}
	if az := s.cfg.Authorizer; az != nil {
		if err := az.Authorize(AuthzRequest{AccessKeyID: call.AccessKeyID, Action: "kms:" + op, Resource: resource}); err != nil {
			writeKMSError(w, &kmsError{status: http.StatusBadRequest, code: "AccessDeniedException", msg: err.Error()})
			return
		}
	}
	out, e := o.run(s.kms, in)
	if e != nil {
		writeKMSError(w, e)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func str(in map[string]any, key string) string {
	v, _ := in[key].(string)
	return v
}

// keyParam resolves the key a parameter names to its ARN.
func keyParam(param string) func(k *KMS, in map[string]any) (string, *kmsError) {
	return func(k *KMS, in map[string]any) (string, *kmsError) {
		ref := str(in, param)
		if ref == "" {
			return "", kmsErr("ValidationException", "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(param))
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		key, kerr := k.resolveLocked(ref, false)
		if kerr != nil {
			if strings.HasPrefix(ref, "alias/") || strings.Contains(ref, ":alias/") {
				return "", kmsErr("NotFoundException", "Alias %s is not found.", k.aliasARN(ref))
			}
			if strings.HasPrefix(ref, "arn:") && !strings.HasPrefix(ref, "arn:aws:kms:") {
				return "", kmsErr("InvalidArnException", "%s is not a valid KMS ARN.", ref)
			}
			return "", kmsErr("NotFoundException", "Key '%s' does not exist", k.arnOf(ref))
		}
		return k.arn(key.ID), nil
	}
}

func lowerFirst(s string) string { return strings.ToLower(s[:1]) + s[1:] }

func (k *KMS) aliasARN(ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return fmt.Sprintf("arn:aws:kms:%s:%s:%s", k.region, k.account, ref)
}

func (k *KMS) arnOf(ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return k.arn(strings.TrimPrefix(ref, "key/"))
}

// keyMetadata is a key as DescribeKey and CreateKey return it.
func (k *KMS) keyMetadata(ki KeyInfo) map[string]any {
	m := map[string]any{
		"AWSAccountId": k.account, "KeyId": ki.KeyID, "Arn": ki.ARN, "CreationDate": float64(ki.Created.UnixMilli()) / 1000,
		"Enabled": ki.State == KeyEnabled, "Description": ki.Description, "KeyUsage": "ENCRYPT_DECRYPT", "KeyState": ki.State,
		"Origin": "AWS_KMS", "KeyManager": "CUSTOMER", "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT", "KeySpec": "SYMMETRIC_DEFAULT",
		"EncryptionAlgorithms": []string{"SYMMETRIC_DEFAULT"}, "MultiRegion": false,
	}
	if contains(ki.Aliases, DefaultKMSAlias) {
		m["KeyManager"] = "AWS"
	}
	if !ki.DeletionDate.IsZero() {
		m["DeletionDate"] = float64(ki.DeletionDate.Unix())
		m["PendingDeletionWindowInDays"] = int(ki.DeletionDate.Sub(ki.Created).Hours()/24 + 0.5)
	}
	return m
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (k *KMS) apiCreateKey(in map[string]any) (any, *kmsError) {
	if spec := str(in, "KeySpec") + str(in, "CustomerMasterKeySpec"); spec != "" && spec != "SYMMETRIC_DEFAULT" {
		return nil, kmsErr("UnsupportedOperationException", "Only SYMMETRIC_DEFAULT keys are supported here, not %s.", spec)
	}
	if u := str(in, "KeyUsage"); u != "" && u != "ENCRYPT_DECRYPT" {
		return nil, kmsErr("UnsupportedOperationException", "Only ENCRYPT_DECRYPT keys are supported here, not %s.", u)
	}
	if p := str(in, "Policy"); p != "" && !json.Valid([]byte(p)) {
		return nil, kmsErr("MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the future.")
	}
	ki, err := k.CreateKey(str(in, "Description"))
	if err != nil {
		return nil, kmsErr("KMSInternalException", "%v", err)
	}
	return map[string]any{"KeyMetadata": k.keyMetadata(ki)}, nil
}

func (k *KMS) apiDescribeKey(in map[string]any) (any, *kmsError) {
	ki, err := k.DescribeKey(str(in, "KeyId"))
	if err != nil {
		return nil, kmsErr("NotFoundException", "Key '%s' does not exist", k.arnOf(str(in, "KeyId")))
	}
	return map[string]any{"KeyMetadata": k.keyMetadata(ki)}, nil
}

func (k *KMS) apiListKeys(map[string]any) (any, *kmsError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := []map[string]string{}
	for id := range k.keys {
		keys = append(keys, map[string]string{"KeyId": id, "KeyArn": k.arn(id)})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i]["KeyId"] < keys[j]["KeyId"] })
	return map[string]any{"Keys": keys, "Truncated": false}, nil
}

func (k *KMS) apiListAliases(in map[string]any) (any, *kmsError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	want := ""
	if ref := str(in, "KeyId"); ref != "" {
		key, kerr := k.resolveLocked(ref, false)
		if kerr != nil {
			return nil, kmsErr("NotFoundException", "Key '%s' does not exist", k.arnOf(ref))
		}
		want = key.ID
	}
	aliases := []map[string]any{}
	for a, id := range k.aliases {
		if want != "" && id != want {
			continue
		}
		aliases = append(aliases, map[string]any{"AliasName": a, "AliasArn": k.aliasARN(a), "TargetKeyId": id})
	}
	sort.Slice(aliases, func(i, j int) bool { return aliases[i]["AliasName"].(string) < aliases[j]["AliasName"].(string) })
	return map[string]any{"Aliases": aliases, "Truncated": false}, nil
}

func (k *KMS) apiCreateAlias(in map[string]any) (any, *kmsError) {
	alias := str(in, "AliasName")
	if !strings.HasPrefix(alias, "alias/") || len(alias) <= len("alias/") || len(alias) > 256 {
		return nil, kmsErr("ValidationException", "1 validation error detected: Value '%s' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$", alias)
	}
	if strings.HasPrefix(alias, "alias/aws/") {
		return nil, kmsErr("NotAuthorizedException", "Cannot create alias with prefix 'alias/aws/'")
	}
	if target := str(in, "TargetKeyId"); strings.HasPrefix(target, "alias/") || strings.Contains(target, ":alias/") {
		return nil, kmsErr("ValidationException", "Aliases must refer to keys. Not aliases")
	}
	k.mu.Lock()
	_, exists := k.aliases[alias]
	k.mu.Unlock()
	if exists {
		return nil, kmsErr("AlreadyExistsException", "An alias with the name %s already exists", k.aliasARN(alias))
	}
	if ki, err := k.DescribeKey(str(in, "TargetKeyId")); err == nil && ki.State == KeyPendingDeletion {
		return nil, kmsErr("KMSInvalidStateException", "%s is pending deletion.", ki.ARN)
	}
	if err := k.CreateAlias(alias, str(in, "TargetKeyId")); err != nil {
		return nil, kmsErr("NotFoundException", "%v", err)
	}
	return struct{}{}, nil
}

func (k *KMS) apiDeleteAlias(in map[string]any) (any, *kmsError) {
	alias := str(in, "AliasName")
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.aliases[alias]; !ok {
		return nil, kmsErr("NotFoundException", "Alias %s is not found.", k.aliasARN(alias))
	}
	if strings.HasPrefix(alias, "alias/aws/") {
		return nil, kmsErr("NotAuthorizedException", "Cannot delete alias with prefix 'alias/aws/'")
	}
	delete(k.aliases, alias)
	if err := k.save(); err != nil {
		return nil, kmsErr("KMSInternalException", "%v", err)
	}
	return struct{}{}, nil
}

// stateChange enables or disables a key; a key pending deletion can be
// neither (KMSInvalidStateException, as AWS answers).
func stateChange(to string) func(k *KMS, in map[string]any) (any, *kmsError) {
	return func(k *KMS, in map[string]any) (any, *kmsError) {
		return k.transition(str(in, "KeyId"), func(key *kmsKey) *kmsError {
			if key.State == KeyPendingDeletion {
				return kmsErr("KMSInvalidStateException", "%s is pending deletion.", k.arn(key.ID))
			}
			if isAWSManaged(k, key.ID) {
				return kmsErr("NotAuthorizedException", "The AWS managed key %s cannot be disabled or enabled.", k.arn(key.ID))
			}
			key.State = to
			return nil
		}, nil)
	}
}

// isAWSManaged reports whether id is the key behind alias/aws/kinesisvideo.
// Called with k.mu held.
func isAWSManaged(k *KMS, id string) bool { return k.aliases[DefaultKMSAlias] == id }

func (k *KMS) transition(ref string, fn func(*kmsKey) *kmsError, out func(*kmsKey) any) (any, *kmsError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, kerr := k.resolveLocked(ref, false)
	if kerr != nil {
		return nil, kmsErr("NotFoundException", "Key '%s' does not exist", k.arnOf(ref))
	}
	if e := fn(key); e != nil {
		return nil, e
	}
	if err := k.save(); err != nil {
		return nil, kmsErr("KMSInternalException", "%v", err)
	}
	if out == nil {
		return struct{}{}, nil
	}
	return out(key), nil
}

// apiScheduleKeyDeletion marks a key PendingDeletion for 7–30 days (default
// 30); it is unusable meanwhile (4505 on PutMedia), and can be cancelled.
func (k *KMS) apiScheduleKeyDeletion(in map[string]any) (any, *kmsError) {
	days := 30
	if v, ok := in["PendingWindowInDays"].(float64); ok {
		days = int(v)
	}
	if days < 7 || days > 30 {
		return nil, kmsErr("ValidationException", "1 validation error detected: Value '%d' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30", days)
	}
	return k.transition(str(in, "KeyId"), func(key *kmsKey) *kmsError {
		if key.State == KeyPendingDeletion {
			return kmsErr("KMSInvalidStateException", "%s is pending deletion.", k.arn(key.ID))
		}
		if isAWSManaged(k, key.ID) {
			return kmsErr("NotAuthorizedException", "The AWS managed key %s cannot be deleted.", k.arn(key.ID))
		}
		key.State, key.DeletionDate = KeyPendingDeletion, k.now().Add(time.Duration(days)*24*time.Hour).Truncate(time.Second)
		return nil
	}, func(key *kmsKey) any {
		return map[string]any{"KeyId": k.arn(key.ID), "DeletionDate": float64(key.DeletionDate.Unix()), "KeyState": key.State, "PendingWindowInDays": days}
	})
}

// apiCancelKeyDeletion leaves the key Disabled, as KMS does.
func (k *KMS) apiCancelKeyDeletion(in map[string]any) (any, *kmsError) {
	return k.transition(str(in, "KeyId"), func(key *kmsKey) *kmsError {
		if key.State != KeyPendingDeletion {
			return kmsErr("KMSInvalidStateException", "%s is not pending deletion.", k.arn(key.ID))
		}
		key.State, key.DeletionDate = KeyDisabled, time.Time{}
		return nil
	}, func(key *kmsKey) any { return map[string]any{"KeyId": k.arn(key.ID)} })
}
