package awsfake_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

const (
	owner  = "111111111111"
	other  = "222222222222"
	region = "eu-west-1"
)

// post sends one EC2 query-protocol request as the base identity (the
// fake reads the SigV4 scope without checking the signature) and returns
// the status and body.
func post(t *testing.T, s *awsfake.Server, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(ec2Request(t, context.Background(), s, form))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// ec2Request is an EC2 query-protocol request of form as the base
// identity.
func ec2Request(t *testing.T, ctx context.Context, s *awsfake.Server, form url.Values) *http.Request {
	t.Helper()
	form.Set("Version", "2016-11-15")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", fmt.Sprintf(
		"AWS4-HMAC-SHA256 Credential=%s/20260101/%s/ec2/aws4_request, SignedHeaders=host, Signature=00", awsfake.BaseAccessKeyID, region))
	req.Header.Set("X-Amz-Security-Token", awsfake.BaseSessionToken)
	return req
}

func newServer(t *testing.T) (*sim.Cloud, *awsfake.Server) {
	t.Helper()
	c := sim.New()
	for _, a := range []string{owner, other} {
		if err := c.AddAccount(a, "acct-"+a[:3], "", cloud.AccountActive); err != nil {
			t.Fatal(err)
		}
	}
	s := awsfake.New(c, awsfake.Options{BaseAccount: owner})
	t.Cleanup(s.Close)
	return c, s
}

// imageIDsIn extracts the image ids of a DescribeImages answer.
func imageIDsIn(t *testing.T, body string) []string {
	t.Helper()
	var resp struct {
		Images []struct {
			ID  string `xml:"imageId"`
			EBS []struct {
				KMSKeyID string `xml:"ebs>kmsKeyId"`
			} `xml:"blockDeviceMapping>item"`
		} `xml:"imagesSet>item"`
	}
	if err := xml.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	var ids []string
	for _, im := range resp.Images {
		for _, bd := range im.EBS {
			if bd.KMSKeyID != "" {
				t.Errorf("image %s: DescribeImages reported key %s, which EC2 never does", im.ID, bd.KMSKeyID)
			}
		}
		ids = append(ids, im.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestDescribeImagesIncludeDisabled(t *testing.T) {
	c, s := newServer(t)
	key := c.AddKey(owner, region, "golden")
	live := c.AddImage(owner, region, sim.ImageSpec{Devices: []sim.DeviceSpec{{KMSKeyARN: key}}})
	off := c.AddImage(owner, region, sim.ImageSpec{})
	c.DisableImage(owner, region, off.ID)
	both := slices.Sorted(slices.Values([]string{live.ID, off.ID}))
	tests := []struct {
		name   string
		fields map[string]string
		status int
		want   []string
	}{
		{"EC2 hides disabled images by default", nil, http.StatusOK, []string{live.ID}},
		{"false hides them too", map[string]string{"IncludeDisabled": "false"}, http.StatusOK, []string{live.ID}},
		{"true lists them", map[string]string{"IncludeDisabled": "true"}, http.StatusOK, both},
		{"state filter still applies", map[string]string{"IncludeDisabled": "true", "Filter.1.Name": "state", "Filter.1.Value.1": "available"}, http.StatusOK, []string{live.ID}},
		{"disabled by state", map[string]string{"IncludeDisabled": "true", "Filter.1.Name": "state", "Filter.1.Value.1": "disabled"}, http.StatusOK, []string{off.ID}},
		{"not a boolean", map[string]string{"IncludeDisabled": "yes"}, http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"Action": {"DescribeImages"}, "Owner.1": {"self"}}
			for k, v := range tt.fields {
				form.Set(k, v)
			}
			status, body := post(t, s, form)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if status != http.StatusOK {
				return
			}
			if ids := imageIDsIn(t, body); !slices.Equal(ids, tt.want) {
				t.Fatalf("images %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestDescribeSnapshots(t *testing.T) {
	c, s := newServer(t)
	key := c.AddKey(owner, region, "golden")
	im := c.AddImage(owner, region, sim.ImageSpec{Devices: []sim.DeviceSpec{{KMSKeyARN: key}, {}}})
	enc, plain := im.BlockDevices[0].SnapshotID, im.BlockDevices[1].SnapshotID
	foreign := c.AddImage(other, region, sim.ImageSpec{Devices: []sim.DeviceSpec{{Encrypted: true}}})
	c.ShareImage(other, region, foreign.ID, owner)

	type item struct {
		ID        string `xml:"snapshotId"`
		Owner     string `xml:"ownerId"`
		Encrypted bool   `xml:"encrypted"`
		Key       string `xml:"kmsKeyId"`
	}
	decode := func(t *testing.T, body string) ([]item, string) {
		t.Helper()
		var resp struct {
			Items []item `xml:"snapshotSet>item"`
			Next  string `xml:"nextToken"`
		}
		if err := xml.Unmarshal([]byte(body), &resp); err != nil {
			t.Fatalf("%v in %s", err, body)
		}
		return resp.Items, resp.Next
	}
	form := func(ids ...string) url.Values {
		f := url.Values{"Action": {"DescribeSnapshots"}, "Owner.1": {"self"}, "Filter.1.Name": {"snapshot-id"}}
		for i, id := range ids {
			f.Set(fmt.Sprintf("Filter.1.Value.%d", i+1), id)
		}
		return f
	}

	t.Run("caller's snapshots only, keys of encrypted ones", func(t *testing.T) {
		status, body := post(t, s, form(plain, enc, foreign.BlockDevices[0].SnapshotID, "snap-0123456789abcdef0"))
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		items, next := decode(t, body)
		want := []item{{ID: enc, Owner: owner, Encrypted: true, Key: key}, {ID: plain, Owner: owner}}
		slices.SortFunc(want, func(a, b item) int { return strings.Compare(a.ID, b.ID) })
		if !slices.Equal(items, want) || next != "" {
			t.Fatalf("items %+v next %q, want %+v", items, next, want)
		}
	})
	t.Run("pages", func(t *testing.T) {
		f := form(plain, enc)
		f.Set("MaxResults", "5")
		status, body := post(t, s, f)
		if items, _ := decode(t, body); status != http.StatusOK || len(items) != 2 {
			t.Fatalf("status %d: %s", status, body)
		}
		f.Set("MaxResults", "4")
		if status, body := post(t, s, f); status != http.StatusBadRequest {
			t.Fatalf("MaxResults 4 accepted: %s", body)
		}
	})
	for _, tt := range []struct {
		name string
		edit func(url.Values)
		code string
	}{
		{"owner must be self", func(f url.Values) { f.Set("Owner.1", other) }, "InvalidParameterValue"},
		{"no owner", func(f url.Values) { f.Del("Owner.1") }, "InvalidParameterValue"},
		{"other filters", func(f url.Values) { f.Set("Filter.1.Name", "status") }, "InvalidParameterValue"},
		{"no filter", func(f url.Values) { f.Del("Filter.1.Name"); f.Del("Filter.1.Value.1") }, "InvalidParameterValue"},
		{"SnapshotId.N", func(f url.Values) { f.Set("SnapshotId.1", enc) }, "InvalidParameterValue"},
		{"more than 200 values", func(f url.Values) {
			for i := range 201 {
				f.Set(fmt.Sprintf("Filter.1.Value.%d", i+1), fmt.Sprintf("snap-f%016x", i))
			}
		}, "FilterLimitExceeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := form(enc)
			tt.edit(f)
			status, body := post(t, s, f)
			if status != http.StatusBadRequest || !strings.Contains(body, "<Code>"+tt.code+"</Code>") {
				t.Fatalf("status %d body %s, want %s", status, body, tt.code)
			}
		})
	}
	// Refused requests never reach the simulator.
	if n := c.Calls(cloud.OpDescribeSnapshots, owner, region); n != 2 {
		t.Errorf("simulator counted %d DescribeSnapshots, want one per served request (2)", n)
	}
}
