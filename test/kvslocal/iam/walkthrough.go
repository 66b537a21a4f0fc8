package iam

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The names of the KVS developer guide's walkthrough "Controlling access to
// Kinesis Video Streams resources using AWS IoT".
const (
	GuideRoleName      = "KVSCameraCertificateBasedIAMRole"
	GuideRoleAlias     = "KvsCameraIoTRoleAlias"
	GuideIoTPolicyName = "KvsCameraIoTPolicy"
	GuideThingType     = "kvs_example_camera"
)

// Policy variables the credentials provider sets.
const (
	VarThingName     = "credentials-iot:ThingName"
	VarThingTypeName = "credentials-iot:ThingTypeName"
	VarCertificateID = "credentials-iot:AwsCertificateId"
)

// GuideRolePolicy is the guide's permission policy, with the stream named
// after the policy variable v (VarThingName in the guide; VarCertificateID
// for streams named after the certificate).
func GuideRolePolicy(v string) Policy {
	return Policy{Version: "2012-10-17", Statement: []Statement{{
		Effect:   "Allow",
		Action:   strings_{"kinesisvideo:DescribeStream", "kinesisvideo:PutMedia", "kinesisvideo:TagStream", "kinesisvideo:GetDataEndpoint"},
		Resource: strings_{"arn:aws:kinesisvideo:*:*:stream/${" + v + "}/*"},
	}}}
}

// Files Walkthrough writes besides the devices' (dir/<name>).
const (
	WalkthroughConfig    = "iam.json"
	WalkthroughServerPEM = "iot-server.pem" // the IoT endpoint's certificate, for localhost and 127.0.0.1
	WalkthroughServerKey = "iot-server.key"
)

// WalkthroughOptions shape Walkthrough.
type WalkthroughOptions struct {
	AccountID, Region string
	// StreamVariable names the streams in the role's policy; default
	// VarThingName.
	StreamVariable string
	// CredentialDuration is File.CredentialDuration (test-only lifetime).
	CredentialDuration string
	// Admin, if set, is a user with every permission (for creating streams).
	Admin *User
}

// Walkthrough sets up the guide's walkthrough in dir for the given things: a
// CA, one device certificate and key per thing (dir/<thing>.pem, .key), the
// role, role alias, IoT policy and things, written as dir/iam.json, and
// the IoT endpoint's server certificate for localhost (iot-server.pem,
// iot-server.key). It returns the CA, the configuration and each thing's
// files.
func Walkthrough(dir string, things []string, o WalkthroughOptions) (*CA, *File, map[string]DeviceFiles, error) {
	if o.AccountID == "" {
		o.AccountID = DefaultAccountID
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.StreamVariable == "" {
		o.StreamVariable = VarThingName
	}
	ca, err := NewCA("kvsgo test IoT CA")
	if err != nil {
		return nil, nil, nil, err
	}
	f := &File{
		AccountID: o.AccountID, Region: o.Region, CredentialDuration: o.CredentialDuration,
		Roles: []Role{{
			Name: GuideRoleName, MaxSessionDuration: 3600,
			TrustPolicy: Policy{Version: "2012-10-17", Statement: []Statement{{Effect: "Allow",
				Principal: &Principal{Service: []string{iotServicePrincipal}}, Action: strings_{"sts:AssumeRole"}}}},
			Policies: []Policy{GuideRolePolicy(o.StreamVariable)},
		}},
		RoleAliases: []RoleAlias{{Name: GuideRoleAlias, RoleARN: fmt.Sprintf("arn:aws:iam::%s:role/%s", o.AccountID, GuideRoleName), CredentialDurationSeconds: 3600}},
		IoTPolicies: map[string]Policy{GuideIoTPolicyName: {Version: "2012-10-17", Statement: []Statement{{Effect: "Allow",
			Action:   strings_{"iot:Connect", "iot:AssumeRoleWithCertificate"},
			Resource: strings_{fmt.Sprintf("arn:aws:iot:%s:%s:rolealias/%s", o.Region, o.AccountID, GuideRoleAlias)}}}}},
	}
	if o.Admin != nil {
		f.Users = append(f.Users, *o.Admin)
	}
	devs := map[string]DeviceFiles{}
	for _, t := range things {
		d, err := ca.WriteDevice(dir, t, IssueOptions{})
		if err != nil {
			return nil, nil, nil, err
		}
		devs[t] = d
		f.Certificates = append(f.Certificates, Certificate{PEMFile: d.CertPath, Status: "ACTIVE", Policies: []string{GuideIoTPolicyName}})
		f.Things = append(f.Things, Thing{Name: t, TypeName: GuideThingType, Principals: []string{d.ID}})
	}
	srv, err := ca.Issue(IssueOptions{CommonName: "localhost", Hosts: []string{"localhost", "127.0.0.1", "::1"}})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := errors.Join(os.WriteFile(filepath.Join(dir, WalkthroughServerPEM), srv.CertPEM, 0o644),
		os.WriteFile(filepath.Join(dir, WalkthroughServerKey), srv.KeyPEM, 0o600)); err != nil {
		return nil, nil, nil, err
	}
	if err := f.Save(filepath.Join(dir, WalkthroughConfig)); err != nil {
		return nil, nil, nil, err
	}
	return ca, f, devs, nil
}

// WalkthroughExpired reports whether a certificate of the walkthrough in dir
// (its CA, the IoT endpoint's, or a device's that iam.json names) has expired
// at now, so that the walkthrough must be made anew. Files that are missing
// or unreadable are left to the code that loads them to report.
func WalkthroughExpired(dir string, now time.Time) bool {
	paths := []string{filepath.Join(dir, "ca.pem"), filepath.Join(dir, WalkthroughServerPEM)}
	if f, err := Load(filepath.Join(dir, WalkthroughConfig)); err == nil {
		for _, c := range f.Certificates {
			if c.PEMFile != "" {
				paths = append(paths, c.PEMFile)
			}
		}
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if blk, _ := pem.Decode(b); blk != nil {
			if c, err := x509.ParseCertificate(blk.Bytes); err == nil && now.After(c.NotAfter) {
				return true
			}
		}
	}
	return false
}

// AdminPolicy allows everything.
func AdminPolicy() Policy {
	return Policy{Version: "2012-10-17", Statement: []Statement{{Effect: "Allow", Action: strings_{"*"}, Resource: strings_{"*"}}}}
}
