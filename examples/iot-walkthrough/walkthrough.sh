#!/usr/bin/env bash
# The KVS developer guide's "Controlling access to Kinesis Video Streams
# resources using AWS IoT", command for command, against the local endpoint
# (test/kvslocal): the only change is --endpoint-url on each aws command,
# and the CA certificate is downloaded from the endpoint instead of Amazon.
#
# Then it streams with kvssink using the camera's certificate, reads the
# stream back and plays it, shows that a second camera's certificate cannot
# write the first camera's stream, and runs the guide's certificate-id
# variant. It ends by deleting everything it created (KEEP=1 keeps it).
#
# Run it from anywhere, with the kvsgo plugin on GST_PLUGIN_PATH and the
# kvsgo tool on PATH (go build -o ~/bin/kvsgo ./examples/kvsgo):
#
#   examples/iot-walkthrough/walkthrough.sh
#
# Environment (all optional):
#   KVSLOCAL_URL    an endpoint already running (kvslocal prints it); else the
#                   script starts one with $KVSLOCAL (default: go run
#                   ./test/kvslocal/cmd/kvslocal) and stops it at the end
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
#                   the endpoint's administrator key (given to kvslocal when
#                   the script starts it)
#   WORK            directory for the guide's files (default: a new temporary one)
#   FRAMES          frames each camera streams (default 150, 5 s)
#   PLAY_SINK       the video sink that plays the stream back (default autovideosink)
#   KVSGO           the kvsgo tool (default kvsgo)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
FRAMES=${FRAMES:-150}
PLAY_SINK=${PLAY_SINK:-autovideosink}
KVSGO=${KVSGO:-kvsgo}
export AWS_REGION=${AWS_REGION:-us-west-2} AWS_DEFAULT_REGION=${AWS_REGION:-us-west-2}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-AKIDWALKTHROUGHADMIN}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-walkthrough-admin-secret}
export AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE || true
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
cd "$WORK"

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'walkthrough: FAILED: %s\n' "$*" >&2; exit 1; }

if [ -z "${KVSLOCAL_URL:-}" ]; then
	step "start the local endpoint"
	read -r -a kvslocal <<<"${KVSLOCAL:-go run $root/test/kvslocal/cmd/kvslocal}"
	(cd "$root" && exec "${kvslocal[@]}" -dir "$WORK/kvslocal-data" -audit-log "$WORK/audit.jsonl" \
		-access-key "$AWS_ACCESS_KEY_ID" -secret-key "$AWS_SECRET_ACCESS_KEY") >"$WORK/kvslocal.out" 2>"$WORK/kvslocal.log" &
	kvslocal_pid=$!
	trap 'kill $kvslocal_pid 2>/dev/null; wait $kvslocal_pid 2>/dev/null || true' EXIT
	for _ in $(seq 600); do
		KVSLOCAL_URL=$(sed -n 's/^KVSLOCAL_URL=//p' "$WORK/kvslocal.out")
		[ -n "$KVSLOCAL_URL" ] && break
		kill -0 $kvslocal_pid 2>/dev/null || fail "kvslocal did not start: $(cat "$WORK/kvslocal.log")"
		sleep 0.2
	done
	[ -n "$KVSLOCAL_URL" ] || fail "kvslocal printed no URL"
fi
EP=$KVSLOCAL_URL
echo "endpoint: $EP (every service: kinesisvideo, iot, iam, sts, kms)"
aws() { command aws --endpoint-url "$EP" "$@"; }

# --- The guide, step by step -------------------------------------------------

step "Step 1: create a thing type and a thing"
aws iot create-thing-type --thing-type-name kvs_example_camera > iot-thing-type.json
aws iot create-thing --thing-name kvs_example_camera_stream --thing-type-name kvs_example_camera > iot-thing.json
cat iot-thing.json

step "Step 2: create an IAM role to be assumed by AWS IoT"
cat > iam-policy-document.json <<'EOF'
{
    "Version":"2012-10-17",
    "Statement":[
        {
            "Effect":"Allow",
            "Principal":{
                "Service":"credentials.iot.amazonaws.com"
            },
            "Action":"sts:AssumeRole"
        }
    ]
}
EOF
aws iam create-role --role-name KVSCameraCertificateBasedIAMRole \
	--assume-role-policy-document 'file://iam-policy-document.json' > iam-role.json

cat > iam-permission-document.json <<'EOF'
{
    "Version":"2012-10-17",
    "Statement":[
        {
            "Effect":"Allow",
            "Action":[
                "kinesisvideo:DescribeStream",
                "kinesisvideo:PutMedia",
                "kinesisvideo:TagStream",
                "kinesisvideo:GetDataEndpoint"
            ],
            "Resource":"arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*"
        }
    ]
}
EOF
aws iam put-role-policy --role-name KVSCameraCertificateBasedIAMRole \
	--policy-name KVSCameraIAMPolicy --policy-document 'file://iam-permission-document.json'

aws iot create-role-alias --role-alias KvsCameraIoTRoleAlias \
	--role-arn "$(jq --raw-output '.Role.Arn' iam-role.json)" --credential-duration-seconds 3600 > iot-role-alias.json

cat > iot-policy-document.json <<EOF
{
    "Version":"2012-10-17",
    "Statement":[
        {
            "Effect":"Allow",
            "Action":[
                "iot:Connect"
            ],
            "Resource":"$(jq --raw-output '.roleAliasArn' iot-role-alias.json)"
        },
        {
            "Effect":"Allow",
            "Action":[
                "iot:AssumeRoleWithCertificate"
            ],
            "Resource":"$(jq --raw-output '.roleAliasArn' iot-role-alias.json)"
        }
    ]
}
EOF
aws iot create-policy --policy-name KvsCameraIoTPolicy --policy-document 'file://iot-policy-document.json'

step "Step 3: create and configure the X.509 certificate"
aws iot create-keys-and-certificate --set-as-active --certificate-pem-outfile certificate.pem \
	--public-key-outfile public.pem.key --private-key-outfile private.pem.key > certificate
aws iot attach-policy --policy-name KvsCameraIoTPolicy --target "$(jq --raw-output '.certificateArn' certificate)"
aws iot attach-thing-principal --thing-name kvs_example_camera_stream --principal "$(jq --raw-output '.certificateArn' certificate)"
aws iot describe-endpoint --endpoint-type iot:CredentialProvider --output text > iot-credential-provider.txt
# The guide downloads Amazon's root CA; the endpoint serves its own.
curl --silent --show-error --fail "$EP/AmazonRootCA1.pem" --output cacert.pem
echo "credentials provider: $(cat iot-credential-provider.txt)"

step "Step 4: test the credentials with curl, then describe-stream with them"
aws kinesisvideo create-stream --data-retention-in-hours 24 --stream-name kvs_example_camera_stream
curl --silent --show-error --fail -H "x-amzn-iot-thingname:kvs_example_camera_stream" --cert certificate.pem --key private.pem.key \
	"https://$(cat iot-credential-provider.txt)/role-aliases/KvsCameraIoTRoleAlias/credentials" --cacert cacert.pem > token.json
jq '.credentials | {accessKeyId, expiration}' token.json
AWS_ACCESS_KEY_ID=$(jq --raw-output '.credentials.accessKeyId' token.json) \
AWS_SECRET_ACCESS_KEY=$(jq --raw-output '.credentials.secretAccessKey' token.json) \
AWS_SESSION_TOKEN=$(jq --raw-output '.credentials.sessionToken' token.json) \
	aws kinesisvideo describe-stream --stream-name kvs_example_camera_stream

step "Step 5: stream with kvssink and the camera's certificate"
# No AWS keys: the element fetches credentials with the certificate.
camera() {
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL_KINESIS_VIDEO="$EP" \
		gst-launch-1.0 -e videotestsrc num-buffers="$FRAMES" ! video/x-raw,framerate=30/1 ! x264enc tune=zerolatency key-int-max=30 \
		! h264parse ! kvssink stream-name="$1" \
		iot-certificate="iot-certificate,endpoint=$(cat iot-credential-provider.txt),cert-path=$2,key-path=$3,ca-path=cacert.pem,role-aliases=KvsCameraIoTRoleAlias${4:+,iot-thing-name=$4}"
}
camera kvs_example_camera_stream certificate.pem private.pem.key

step "read the stream back and play it"
AWS_ENDPOINT_URL_KINESIS_VIDEO="$EP" "$KVSGO" get -stream kvs_example_camera_stream -start EARLIEST -o kvs_example_camera_stream.mkv
gst-launch-1.0 filesrc location=kvs_example_camera_stream.mkv ! matroskademux ! h264parse ! avdec_h264 ! videoconvert ! "$PLAY_SINK"

step "a second camera cannot write the first camera's stream"
aws iot create-thing --thing-name kvs_example_camera_2 --thing-type-name kvs_example_camera > /dev/null
aws iot create-keys-and-certificate --set-as-active --certificate-pem-outfile certificate2.pem \
	--public-key-outfile public2.pem.key --private-key-outfile private2.pem.key > certificate2
aws iot attach-policy --policy-name KvsCameraIoTPolicy --target "$(jq --raw-output '.certificateArn' certificate2)"
aws iot attach-thing-principal --thing-name kvs_example_camera_2 --principal "$(jq --raw-output '.certificateArn' certificate2)"
aws kinesisvideo create-stream --data-retention-in-hours 24 --stream-name kvs_example_camera_2
camera kvs_example_camera_2 certificate2.pem private2.pem.key
if camera kvs_example_camera_stream certificate2.pem private2.pem.key kvs_example_camera_2 > camera2-denied.log 2>&1; then
	fail "camera 2 wrote camera 1's stream"
fi
grep -q "AccessDeniedException" camera2-denied.log || fail "camera 2 was refused without AccessDeniedException: $(tail -5 camera2-denied.log)"
echo "camera 2 as thing kvs_example_camera_2 → refused: $(grep -o 'AccessDeniedException[^"]*' camera2-denied.log | head -1)"
if camera kvs_example_camera_stream certificate2.pem private2.pem.key > camera2-thing.log 2>&1; then
	fail "camera 2 wrote camera 1's stream with the default thing name"
fi
grep -q "Invalid thing name passed" camera2-thing.log || fail "no 'Invalid thing name passed': $(tail -5 camera2-thing.log)"
echo "camera 2 with the thing name defaulting to the stream name → refused: the thing is not attached to its certificate"

step "the certificate-id variant: streams named after the certificate"
sed 's/credentials-iot:ThingName/credentials-iot:AwsCertificateId/' iam-permission-document.json > iam-permission-document-certid.json
aws iam put-role-policy --role-name KVSCameraCertificateBasedIAMRole \
	--policy-name KVSCameraIAMPolicy --policy-document 'file://iam-permission-document-certid.json'
CERT_ID=$(jq --raw-output '.certificateId' certificate)
aws kinesisvideo create-stream --data-retention-in-hours 24 --stream-name "$CERT_ID"
camera "$CERT_ID" certificate.pem private.pem.key kvs_example_camera_stream

# --- Clean up ----------------------------------------------------------------

if [ "${KEEP:-}" = 1 ]; then
	step "kept everything in $WORK"
	exit 0
fi
step "delete everything the walkthrough created"
for s in kvs_example_camera_stream kvs_example_camera_2 "$CERT_ID"; do
	aws kinesisvideo delete-stream --stream-arn "$(aws kinesisvideo describe-stream --stream-name "$s" --query StreamInfo.StreamARN --output text)"
done
for c in certificate certificate2; do
	arn=$(jq --raw-output '.certificateArn' $c)
	for thing in $(aws iot list-principal-things --principal "$arn" --query 'things[]' --output text); do
		aws iot detach-thing-principal --thing-name "$thing" --principal "$arn"
	done
	aws iot detach-policy --policy-name KvsCameraIoTPolicy --target "$arn"
	aws iot update-certificate --certificate-id "$(jq --raw-output '.certificateId' $c)" --new-status INACTIVE
	aws iot delete-certificate --certificate-id "$(jq --raw-output '.certificateId' $c)"
done
aws iot delete-thing --thing-name kvs_example_camera_stream
aws iot delete-thing --thing-name kvs_example_camera_2
aws iot deprecate-thing-type --thing-type-name kvs_example_camera
aws iot delete-thing-type --thing-type-name kvs_example_camera
aws iot delete-policy --policy-name KvsCameraIoTPolicy
aws iot delete-role-alias --role-alias KvsCameraIoTRoleAlias
aws iam delete-role-policy --role-name KVSCameraCertificateBasedIAMRole --policy-name KVSCameraIAMPolicy
aws iam delete-role --role-name KVSCameraCertificateBasedIAMRole
echo "left: $(aws iot list-things --query 'length(things)') things, $(aws iot list-certificates --query 'length(certificates)') certificates, $(aws iam list-roles --query 'length(Roles)') roles"
step "walkthrough complete"
