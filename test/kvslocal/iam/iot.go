package iam

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// The AWS IoT credentials provider (local-aws.md §3): GET
// /role-aliases/<alias>/credentials over mutual TLS. The client certificate
// is looked up by its id (SHA-256 of the DER); an unknown or inactive one
// fails the handshake, as does a server name other than the endpoint's. The
// checks then run in AWS's order: thing, IoT policy, alias, role.

// StartIoT serves the credentials provider on addr (e.g. 127.0.0.1:0) with
// the server certificate cert, answering for the host name host (SNI; e.g.
// localhost). It returns the endpoint as the iot-certificate property wants
// it: host:port.
func (s *Server) StartIoT(addr, host string, cert tls.Certificate) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("iam: %w", err)
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			// Clients that connect to 127.0.0.1 send no server name.
			if hello.ServerName != "" && !strings.EqualFold(hello.ServerName, host) {
				s.log.Info("iot: handshake refused", "reason", "server name", "sni", hello.ServerName)
				return nil, fmt.Errorf("iam: server name %q is not the credentials endpoint", hello.ServerName)
			}
			return nil, nil
		},
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id := certID(raw[0])
			s.mu.Lock()
			c, ok := s.certs[id]
			active := ok && c.status == CertActive
			s.mu.Unlock()
			if !active {
				s.log.Info("iot: handshake refused", "reason", "certificate not registered or not ACTIVE", "certificate_id", id)
				s.auditIoT(nil, "", "", id, "", "AccessDenied", "the TLS handshake was refused: the certificate "+id+" is not registered or not ACTIVE")
				return errors.New("iam: certificate not registered or not ACTIVE")
			}
			// RequireAnyClientCert verifies no chain and no dates: a
			// registered certificate must still be within its validity.
			if c, err := x509.ParseCertificate(raw[0]); err != nil || s.now().Before(c.NotBefore) || s.now().After(c.NotAfter) {
				s.log.Info("iot: handshake refused", "reason", "certificate expired or not yet valid", "certificate_id", id)
				s.auditIoT(nil, "", "", id, "", "AccessDenied", "the TLS handshake was refused: the certificate "+id+" is expired or not yet valid")
				return errors.New("iam: certificate expired or not yet valid")
			}
			return nil
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /role-aliases/{alias}/credentials", s.iotCredentials)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeIoTError(w, http.StatusNotFound, "", map[string]string{"message": "Not Found", "traceId": requestID()})
	})
	s.serve(l, mux, func(l net.Listener) net.Listener { return tls.NewListener(l, cfg) })
	_, port, _ := net.SplitHostPort(l.Addr().String())
	ep := net.JoinHostPort(host, port)
	s.mu.Lock()
	s.iotEP = ep
	s.mu.Unlock()
	return ep, nil
}

func certID(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

func (s *Server) iotCredentials(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		writeIoTError(w, http.StatusForbidden, "AccessDeniedException", map[string]string{"message": "Access Denied"})
		return
	}
	id := certID(r.TLS.PeerCertificates[0].Raw)
	alias := r.PathValue("alias")
	s.mu.Lock()
	ss, status, code, msg := s.credentialsLocked(id, alias, r.Header.Get("x-amzn-iot-thingname"))
	s.mu.Unlock()
	thing := r.Header.Get("x-amzn-iot-thingname")
	if ss == nil {
		s.auditIoT(r, alias, thing, id, "", code, msg)
		s.log.Info("iot: refused", "alias", alias, "certificate_id", id, "reason", msg)
		writeIoTError(w, status, code, map[string]string{"message": msg})
		return
	}
	vars := ss.vars
	s.auditIoT(r, alias, thing, id, ss.arn, "", "")
	s.log.Info("iot: credentials issued", "alias", alias, "thing", vars["credentials-iot:ThingName"], "certificate_id", id,
		"access_key", ss.cred.AccessKeyID[:4]+"****", "expires", ss.cred.Expires)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-RequestId", requestID())
	json.NewEncoder(w).Encode(map[string]any{"credentials": map[string]string{
		"accessKeyId": ss.cred.AccessKeyID, "secretAccessKey": ss.cred.SecretAccessKey, "sessionToken": ss.cred.SessionToken,
		"expiration": ss.cred.Expires.UTC().Format("2006-01-02T15:04:05Z"), // never fractional: producer-c needs exactly 20 characters
	}})
}

// auditIoT reports a credential issuance (assumed set) or refusal, as
// CloudTrail shows the credentials provider's AssumeRole: a call of the
// service credentials.iot.amazonaws.com. Never a secret.
func (s *Server) auditIoT(r *http.Request, alias, thing, certID, assumed, code, msg string) {
	rec := kvslocal.AuditRecord{Source: "sts.amazonaws.com", Name: "AssumeRole", SourceIP: "credentials.iot.amazonaws.com",
		UserAgent: "credentials.iot.amazonaws.com", ErrorCode: code, ErrorMsg: msg, PrincipalType: "AWSService",
		InvokedBy: "credentials.iot.amazonaws.com",
		Params:    map[string]any{"certificateId": certID, "roleSessionName": certID}}
	if r != nil {
		rec.UserAgent = r.UserAgent()
	}
	if alias != "" {
		rec.Params["roleAlias"] = alias
		rec.ResourceARN, rec.Resource = s.RoleAliasARN(alias), "AWS::IoT::RoleAlias"
		s.mu.Lock()
		if a := s.aliases[alias]; a != nil {
			rec.Params["roleArn"], rec.Params["durationSeconds"] = a.roleARN, a.duration
		}
		s.mu.Unlock()
	}
	if thing != "" {
		rec.Params["thingName"] = thing
	}
	if assumed != "" {
		rec.Response = map[string]any{"assumedRoleUser": map[string]any{"arn": assumed}}
	}
	s.auditf(rec)
}

// credentialsLocked makes the checks of the credentials provider in AWS's
// order (thing, IoT policy, alias, role, duration) and issues credentials,
// or says why not: status, error code and message.
func (s *Server) credentialsLocked(id, alias, thingName string) (*session, int, string, string) {
	cert := s.certs[id]
	if cert == nil || cert.status != CertActive { // changed since the handshake
		return nil, http.StatusForbidden, "AccessDeniedException", "Access Denied"
	}
	vars := map[string]string{VarCertificateID: id}
	if thingName != "" {
		t, ok := s.things[thingName]
		if !ok || !contains(t.principals, id) {
			return nil, http.StatusForbidden, "AccessDeniedException", "Invalid thing name passed"
		}
		vars[VarThingName] = t.name
		if t.typeName != "" {
			vars[VarThingTypeName] = t.typeName
		}
	}
	var pols []Policy
	for _, p := range cert.policies {
		if ip := s.iotPols[p]; ip != nil {
			pols = append(pols, ip.p)
		}
	}
	if Evaluate(pols, Request{Action: "iot:AssumeRoleWithCertificate", Resource: s.RoleAliasARN(alias), Context: vars}) != Allowed {
		return nil, http.StatusForbidden, "AccessDeniedException", "Access Denied"
	}
	a, ok := s.aliases[alias]
	if !ok {
		return nil, http.StatusNotFound, "ResourceNotFoundException", "Role alias does not exist"
	}
	r := s.roleByARNLocked(a.roleARN)
	if r == nil || !trusts(r.trust.p, "sts:AssumeRole", iotServicePrincipal, true, vars, s.account) {
		return nil, http.StatusBadRequest, "InvalidRequestException", "Unable to assume the role, or the role to assume does not exist"
	}
	if a.duration > r.maxSession {
		return nil, http.StatusBadRequest, "InvalidRequestException", "The requested CredentialDurationSeconds exceeds the MaxSessionDuration set for the role"
	}
	return s.issueLocked(r, id, time.Duration(a.duration)*time.Second, vars), http.StatusOK, "", ""
}

// roleByARNLocked finds a role by ARN (with or without a path).
func (s *Server) roleByARNLocked(arn string) *role {
	prefix := "arn:aws:iam::" + s.account + ":role/"
	if !strings.HasPrefix(arn, prefix) {
		return nil
	}
	name := arn[strings.LastIndex(arn, "/")+1:]
	r := s.roles[name]
	if r == nil || prefix+strings.TrimPrefix(r.path, "/")+r.name != arn {
		return nil
	}
	return r
}

func writeIoTError(w http.ResponseWriter, status int, code string, body map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-RequestId", requestID())
	if code != "" {
		w.Header().Set("x-amzn-ErrorType", code)
	}
	w.WriteHeader(status)
	b, _ := json.Marshal(body)
	w.Write(b) // {"message":"Access Denied"} is 27 bytes, as AWS sends it
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
