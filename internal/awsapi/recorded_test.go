package awsapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
)

// These tests answer with responses shaped like ones recorded from AWS
// (more fields than amicopier reads, instance-store mappings, a throttle
// before the answer), independently of the awsfake renderer.

const recordedImagesPage1 = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
    <imagesSet>
        <item>
            <imageId>ami-0abcdef1234567890</imageId>
            <imageLocation>111111111111/ubuntu-jammy-web-412</imageLocation>
            <imageState>available</imageState>
            <imageOwnerId>111111111111</imageOwnerId>
            <creationDate>2025-12-20T09:00:00.000Z</creationDate>
            <isPublic>false</isPublic>
            <architecture>x86_64</architecture>
            <platformDetails>Linux/UNIX</platformDetails>
            <usageOperation>RunInstances</usageOperation>
            <imageType>machine</imageType>
            <sriovNetSupport>simple</sriovNetSupport>
            <name>ubuntu-jammy-web-412</name>
            <description>Ubuntu 22.04 web server</description>
            <rootDeviceType>ebs</rootDeviceType>
            <rootDeviceName>/dev/sda1</rootDeviceName>
            <blockDeviceMapping>
                <item>
                    <deviceName>/dev/sda1</deviceName>
                    <ebs>
                        <snapshotId>snap-0123456789abcdef0</snapshotId>
                        <volumeSize>8</volumeSize>
                        <deleteOnTermination>true</deleteOnTermination>
                        <volumeType>gp3</volumeType>
                        <iops>3000</iops>
                        <throughput>125</throughput>
                        <encrypted>true</encrypted>
                    </ebs>
                </item>
                <item>
                    <deviceName>/dev/sdb</deviceName>
                    <virtualName>ephemeral0</virtualName>
                </item>
            </blockDeviceMapping>
            <virtualizationType>hvm</virtualizationType>
            <tagSet>
                <item><key>Recipe</key><value>ubuntu-jammy-web</value></item>
                <item><key>BuiltBy</key><value>amigo</value></item>
            </tagSet>
            <hypervisor>xen</hypervisor>
            <enaSupport>true</enaSupport>
            <bootMode>uefi-preferred</bootMode>
            <deprecationTime>2027-12-20T09:00:00.000Z</deprecationTime>
        </item>
    </imagesSet>
    <nextToken>eyJ2IjoiMiIsImMiOiJwYWdlMiJ9</nextToken>
</DescribeImagesResponse>`

const recordedImagesPage2 = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
    <imagesSet>
        <item>
            <imageId>ami-0fedcba9876543210</imageId>
            <imageLocation>111111111111/copy</imageLocation>
            <imageState>failed</imageState>
            <imageOwnerId>111111111111</imageOwnerId>
            <creationDate>2025-12-22T03:00:00.000Z</creationDate>
            <isPublic>false</isPublic>
            <stateReason>
                <code>Client.InvalidKMSKey.InvalidState</code>
                <message>Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state</message>
            </stateReason>
            <name>copy</name>
            <rootDeviceType>ebs</rootDeviceType>
            <blockDeviceMapping>
                <item>
                    <deviceName>/dev/xvda</deviceName>
                    <ebs>
                        <snapshotId>snap-0fedcba9876543210</snapshotId>
                        <volumeSize>30</volumeSize>
                        <encrypted>true</encrypted>
                    </ebs>
                </item>
            </blockDeviceMapping>
            <tagSet/>
        </item>
        <item>
            <imageId>ami-0aaaabbbbccccdddd</imageId>
            <imageLocation>111111111111/retired</imageLocation>
            <imageState>disabled</imageState>
            <imageOwnerId>111111111111</imageOwnerId>
            <creationDate>2025-06-01T00:00:00.000Z</creationDate>
            <isPublic>false</isPublic>
            <name>retired</name>
            <rootDeviceType>ebs</rootDeviceType>
            <blockDeviceMapping>
                <item>
                    <deviceName>/dev/xvda</deviceName>
                    <ebs>
                        <snapshotId>snap-0aaaabbbbccccdddd</snapshotId>
                        <volumeSize>8</volumeSize>
                        <encrypted>false</encrypted>
                    </ebs>
                </item>
            </blockDeviceMapping>
            <tagSet/>
        </item>
    </imagesSet>
</DescribeImagesResponse>`

const recordedThrottle = `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>d1b8f3c4-0000-4000-8000-EXAMPLE</RequestID></Response>`

const recordedAccounts = `{"Accounts":[
 {"Arn":"arn:aws:organizations::111111111111:account/o-exampleorgid/222222222222","Email":"web@example.com","Id":"222222222222","JoinedMethod":"INVITED","JoinedTimestamp":1.481835795536E9,"Name":"prod-web","Paths":["o-exampleorgid/r-examplerootid/ou-ab12-34cd56ef/"],"State":"ACTIVE","Status":"ACTIVE"},
 {"Arn":"arn:aws:organizations::111111111111:account/o-exampleorgid/333333333333","Email":"old@example.com","Id":"333333333333","JoinedMethod":"CREATED","JoinedTimestamp":1.481835741044E9,"Name":"old","State":"CLOSED"},
 {"Arn":"arn:aws:organizations::111111111111:account/o-exampleorgid/444444444444","Email":"legacy@example.com","Id":"444444444444","JoinedMethod":"CREATED","JoinedTimestamp":1.481835741044E9,"Name":"legacy","Status":"SUSPENDED"}
]}`

// recorded serves canned answers and records the EC2 forms it got.
type recorded struct {
	mu    sync.Mutex
	forms []url.Values
	n     int
}

func (rec *recorded) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if r.Header.Get("X-Amz-Target") == "AWSOrganizationsV20161128.ListAccounts" {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if rec.n++; rec.n == 1 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"TooManyRequestsException","Message":"AWS Organizations can't complete your request because another request is already in progress. Try again later.","Type":"TooManyRequestsException"}`)
			return
		}
		_, _ = io.WriteString(w, recordedAccounts)
		return
	}
	form, _ := url.ParseQuery(string(body))
	rec.forms = append(rec.forms, form)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	switch {
	case len(rec.forms) == 1:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, recordedThrottle)
	case form.Get("NextToken") == "":
		_, _ = io.WriteString(w, recordedImagesPage1)
	default:
		_, _ = io.WriteString(w, recordedImagesPage2)
	}
}

func TestRecordedResponses(t *testing.T) {
	fakeEnv(t)
	rec := &recorded{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	cfg := config.Default()
	cfg.Source.AccountID = srcAccount
	cfg.Source.Regions = []string{region1}
	cfg.AWS.Region = region1
	cfg.AWS.Endpoints.EC2, cfg.AWS.Endpoints.Organizations = srv.URL, srv.URL
	sess, err := NewSession(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn := sess.Connect(runID, ConnectOptions{})
	src, _ := conn.Source(ctx, region1)
	imgs, err := src.DescribeImages(ctx, cloud.ImageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 3 {
		t.Fatalf("%d images, want 3 over two pages", len(imgs))
	}
	web, failed := imgs[0], imgs[1]
	if imgs[2].State != cloud.ImageDisabled {
		t.Errorf("disabled image read as %q", imgs[2].State)
	}
	if web.ID != "ami-0abcdef1234567890" || web.Name != "ubuntu-jammy-web-412" || web.OwnerID != srcAccount ||
		web.State != cloud.ImageAvailable || web.Region != region1 || web.Tags["Recipe"] != "ubuntu-jammy-web" ||
		!web.CreationDate.Equal(time.Date(2025, 12, 20, 9, 0, 0, 0, time.UTC)) || web.Description != "Ubuntu 22.04 web server" {
		t.Errorf("image %+v", web)
	}
	if len(web.BlockDevices) != 1 || web.BlockDevices[0] != (cloud.BlockDevice{DeviceName: "/dev/sda1", SnapshotID: "snap-0123456789abcdef0", Encrypted: true, VolumeSize: 8}) {
		t.Errorf("block devices %+v: the instance-store mapping must be dropped", web.BlockDevices)
	}
	if failed.State != cloud.ImageFailed || !strings.Contains(failed.StateReason, "incorrect state") ||
		failed.BlockDevices[0] != (cloud.BlockDevice{DeviceName: "/dev/xvda", SnapshotID: "snap-0fedcba9876543210", Encrypted: true, VolumeSize: 30}) {
		t.Errorf("failed image %+v", failed)
	}
	if len(rec.forms) != 3 || rec.forms[2].Get("NextToken") != "eyJ2IjoiMiIsImMiOiJwYWdlMiJ9" {
		t.Errorf("forms %v: a throttled attempt, then two pages", rec.forms)
	}
	for i, f := range rec.forms {
		if f.Get("IncludeDisabled") != "true" {
			t.Errorf("request %d without IncludeDisabled=true: disabled images would be invisible", i)
		}
	}

	org, _ := conn.Organization(ctx)
	accts, err := org.ListAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []cloud.Account{
		{ID: acctA, Name: "prod-web", State: cloud.AccountActive},
		{ID: acctB, Name: "old", State: cloud.AccountClosed},
		{ID: acctC, Name: "legacy", State: cloud.AccountSuspended},
	}
	for i := range want {
		if i >= len(accts) || accts[i] != want[i] {
			t.Errorf("accounts %+v, want %+v", accts, want)
			break
		}
	}
	if got := conn.CallCounts(); got["DescribeImages"] != 3 || got["ListAccounts"] != 2 {
		t.Errorf("counts %v", got)
	}
}
