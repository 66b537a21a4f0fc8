// Package iam is the IAM, STS and AWS IoT credentials-provider side of the
// local endpoint (test/kvslocal): it evaluates IAM policies on every KVS call
// (kvslocal.Config.Authorizer), serves the IoT credentials provider over
// mutual TLS and STS AssumeRole/GetCallerIdentity, and issues temporary
// credentials (ASIA…) that the KVS endpoint accepts. Its state comes from a
// configuration file (things, certificates, role aliases, roles, users) that
// a test or the demo writes; pki.go makes a CA, device certificates and keys
// for it.
//
// It is test infrastructure and imports the standard library and
// test/kvslocal only. It never logs a secret, a token or a signature.
package iam

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// File is the configuration file, JSON:
//
//	{
//	  "accountId": "123456789012",
//	  "region": "us-west-2",
//	  "credentialDuration": "3m",
//	  "users": [{"name": "admin", "accessKeyId": "AKIDADMIN", "secretAccessKey": "…",
//	             "policies": [{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]}],
//	  "roles": [{"name": "KVSCameraCertificateBasedIAMRole", "maxSessionDuration": 3600,
//	             "assumeRolePolicyDocument": {"Statement": [{"Effect": "Allow",
//	                 "Principal": {"Service": "credentials.iot.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
//	             "policies": [{"Statement": [{"Effect": "Allow",
//	                 "Action": ["kinesisvideo:DescribeStream", "kinesisvideo:PutMedia", "kinesisvideo:TagStream", "kinesisvideo:GetDataEndpoint"],
//	                 "Resource": "arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*"}]}]}],
//	  "roleAliases": [{"roleAlias": "KvsCameraIoTRoleAlias",
//	                   "roleArn": "arn:aws:iam::123456789012:role/KVSCameraCertificateBasedIAMRole",
//	                   "credentialDurationSeconds": 3600}],
//	  "iotPolicies": {"KvsCameraIoTPolicy": {"Statement": [{"Effect": "Allow",
//	                   "Action": ["iot:Connect", "iot:AssumeRoleWithCertificate"],
//	                   "Resource": "arn:aws:iot:us-west-2:123456789012:rolealias/KvsCameraIoTRoleAlias"}]}},
//	  "certificates": [{"certificatePemFile": "cam1.pem", "status": "ACTIVE", "policies": ["KvsCameraIoTPolicy"]}],
//	  "things": [{"thingName": "cam1", "thingTypeName": "kvs_example_camera", "principals": ["cam1.pem"]}]
//	}
//
// Policies may be objects or strings holding JSON. A thing's principals are
// certificate ids (64 hex), certificate ARNs or certificatePemFile values.
// Relative paths are relative to the file. credentialDuration is a test-only
// setting: it overrides every issued credential's lifetime (AWS's minimum is
// 15 minutes), so that expiry and refresh can be tested in minutes.
type File struct {
	AccountID          string            `json:"accountId,omitempty"`
	Region             string            `json:"region,omitempty"`
	CredentialDuration string            `json:"credentialDuration,omitempty"`
	Users              []User            `json:"users,omitempty"`
	Roles              []Role            `json:"roles,omitempty"`
	RoleAliases        []RoleAlias       `json:"roleAliases,omitempty"`
	IoTPolicies        map[string]Policy `json:"iotPolicies,omitempty"`
	Certificates       []Certificate     `json:"certificates,omitempty"`
	Things             []Thing           `json:"things,omitempty"`
}

// User is an IAM user with a long-term access key.
type User struct {
	Name            string   `json:"name"`
	AccessKeyID     string   `json:"accessKeyId"`
	SecretAccessKey string   `json:"secretAccessKey"`
	Policies        []Policy `json:"policies,omitempty"`
}

// Role is an IAM role.
type Role struct {
	Name string `json:"name"`
	// TrustPolicy says who may assume the role: the IoT credentials
	// provider is the service principal credentials.iot.amazonaws.com.
	TrustPolicy Policy   `json:"assumeRolePolicyDocument"`
	Policies    []Policy `json:"policies,omitempty"`
	// MaxSessionDuration is in seconds; default 3600.
	MaxSessionDuration int `json:"maxSessionDuration,omitempty"`
}

// RoleAlias is an AWS IoT role alias.
type RoleAlias struct {
	Name                      string `json:"roleAlias"`
	RoleARN                   string `json:"roleArn"`
	CredentialDurationSeconds int    `json:"credentialDurationSeconds,omitempty"` // default 3600
}

// Certificate is a registered AWS IoT device certificate.
type Certificate struct {
	PEMFile  string   `json:"certificatePemFile,omitempty"`
	PEM      string   `json:"certificatePem,omitempty"`
	Status   string   `json:"status,omitempty"` // ACTIVE (default) or INACTIVE
	Policies []string `json:"policies,omitempty"`
}

// Thing is an AWS IoT thing with its attached certificates.
type Thing struct {
	Name       string   `json:"thingName"`
	TypeName   string   `json:"thingTypeName,omitempty"`
	Principals []string `json:"principals,omitempty"`
}

// Load reads a configuration file.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("iam: %w", err)
	}
	var f File
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("iam: %s: %w", path, err)
	}
	dir := path[:strings.LastIndex(path, "/")+1]
	for i, c := range f.Certificates {
		if c.PEMFile != "" && !strings.HasPrefix(c.PEMFile, "/") {
			f.Certificates[i].PEMFile = dir + c.PEMFile
			for j := range f.Things {
				for k, p := range f.Things[j].Principals {
					if p == c.PEMFile {
						f.Things[j].Principals[k] = dir + c.PEMFile
					}
				}
			}
		}
	}
	return &f, nil
}

// Save writes f as a configuration file (mode 0600: it holds secrets).
func (f *File) Save(path string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func (f *File) duration() (time.Duration, error) {
	if f.CredentialDuration == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(f.CredentialDuration)
	if err != nil || d <= 0 {
		return 0, errors.New("iam: credentialDuration must be a positive Go duration such as 3m")
	}
	return d, nil
}
