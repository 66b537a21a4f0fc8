package kvslocal

import (
	"fmt"
	"strings"
	"time"
)

// The service's own uses of KMS: a GenerateDataKey for each fragment stored
// and a Decrypt for each fragment served, as KVS makes them. Each is an
// audit event (eventSource kms.amazonaws.com, invokedBy
// kinesisvideo.amazonaws.com). For a customer-managed key, as on AWS, the
// producer's own IAM policies must allow kms:GenerateDataKey on the key
// (else the fragment is refused with 4500 KMS_KEY_ACCESS_DENIED), and a
// consumer's kms:Decrypt (authz.go); the AWS-managed alias/aws/kinesisvideo
// key needs no such permission.

// generateDataKey wraps a fresh data key for a fragment of a stream whose
// key is ref, on behalf of the PutMedia caller.
func (s *Server) generateDataKey(ref, caller string) ([]byte, *wrappedKey, *KMSError) {
	if ref == "" {
		ref = DefaultKMSAlias
	}
	arn, managed := s.kms.keyARN(ref)
	if !managed && arn != "" && caller != "" && s.cfg.Authorizer != nil {
		if err := s.cfg.Authorizer.Authorize(AuthzRequest{AccessKeyID: caller, Action: "kms:GenerateDataKey", Resource: arn}); err != nil {
			kerr := &KMSError{ID: errKMSAccessDenied, Key: ref, Msg: "access denied: " + err.Error()}
			s.auditKMS("GenerateDataKey", arn, caller, "AccessDeniedException", err.Error())
			return nil, nil, kerr
		}
	}
	dk, w, kerr := s.kms.newDataKey(ref)
	if arn == "" && w != nil { // the AWS-managed key, made on first use
		arn = s.kms.arn(w.KeyID)
	}
	s.auditKMS("GenerateDataKey", firstNonEmpty(arn, ref), caller, kmsErrorCode(kerr), kmsErrorMessage(kerr))
	return dk, w, kerr
}

// decryptDataKey unwraps a fragment's data key to serve it.
func (s *Server) decryptDataKey(w *wrappedKey) ([]byte, *KMSError) {
	dk, kerr := s.kms.openDataKey(w)
	s.auditKMS("Decrypt", s.kms.arn(w.KeyID), "", kmsErrorCode(kerr), kmsErrorMessage(kerr))
	return dk, kerr
}

// keyARN resolves ref to its key's ARN ("" if there is none) and says
// whether it is the AWS-managed default key.
func (k *KMS) keyARN(ref string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	managed := ref == DefaultKMSAlias || strings.HasSuffix(ref, ":"+DefaultKMSAlias)
	key, kerr := k.resolveLocked(ref, false)
	if kerr != nil {
		return "", managed
	}
	return k.arn(key.ID), managed || k.aliases[DefaultKMSAlias] == key.ID
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// kmsErrorCode is the KMS exception a *KMSError stands for.
func kmsErrorCode(e *KMSError) string {
	if e == nil {
		return ""
	}
	switch e.ID {
	case errKMSAccessDenied:
		return "AccessDeniedException"
	case errKMSDisabled:
		return "DisabledException"
	case errKMSInvalidState:
		return "KMSInvalidStateException"
	case errKMSNotFound:
		return "NotFoundException"
	case errKMSValidation:
		return "InvalidCiphertextException"
	}
	return "KMSInternalException"
}

func kmsErrorMessage(e *KMSError) string {
	if e == nil {
		return ""
	}
	return e.Error()
}

// auditKMS writes the audit event of a KMS use by the service.
func (s *Server) auditKMS(name, keyARN, caller, code, msg string) {
	if s.audit == nil {
		return
	}
	id := auditIdentity{Type: "AWSService", InvokedBy: "kinesisvideo.amazonaws.com"}
	if caller != "" {
		id = s.identityOf(caller)
		id.InvokedBy = "kinesisvideo.amazonaws.com"
	}
	ev := &auditEvent{
		EventVersion: auditEventVersion, UserIdentity: id, EventTime: s.cfg.Now().UTC().Format(time.RFC3339),
		EventSource: "kms.amazonaws.com", EventName: name, AWSRegion: s.cfg.Region, SourceIPAddress: "kinesisvideo.amazonaws.com",
		UserAgent: "kinesisvideo.amazonaws.com", ErrorCode: code, ErrorMessage: msg,
		RequestParameters: map[string]any{"keyId": keyARN},
		Resources:         []auditResource{{ARN: keyARN, AccountID: s.cfg.AccountID, Type: "AWS::KMS::Key"}},
		RequestID:         newRequestID(), EventID: newRequestID(), ReadOnly: true, EventType: "AwsApiCall", ManagementEvent: true,
		RecipientAccountID: s.cfg.AccountID, EventCategory: "Management",
	}
	if name == "GenerateDataKey" {
		ev.RequestParameters["keySpec"] = "AES_256"
	}
	if err := s.audit.write(ev); err != nil {
		s.log.Error("writing the audit log", "error", fmt.Sprint(err))
	}
}
