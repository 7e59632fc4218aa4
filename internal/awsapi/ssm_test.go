package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// TestParameterRequests: the SSM adapter speaks JSON 1.1 as the API
// reference writes it: a String parameter, its data type, Overwrite, tags
// only on create; ten names a GetParameters; ListTagsForResource and
// AddTagsToResource of a Parameter.
func TestParameterRequests(t *testing.T) {
	ctx := context.Background()
	c := newCloud(t)
	img := c.AddImage(acctA, region1, sim.ImageSpec{Name: "copy", Devices: []sim.DeviceSpec{{Encrypted: true}}})
	f := newFixture(t, c, awsfake.Options{ExternalID: "ext"}, nil)
	conn := f.sess.Connect("run-1", ConnectOptions{})
	s, err := conn.TargetParameters(ctx, acctA, region1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.PutParameter(ctx, cloud.PutParameterInput{Name: "/golden/web/latest", Value: img.ID, DataType: cloud.DataTypeEC2Image,
		Description: "d", Tags: map[string]string{"amicopier:managed": "true"}})
	if err != nil || v != 1 {
		t.Fatalf("PutParameter: %d, %v", v, err)
	}
	put := f.requests("PutParameter")[0]
	if put.JSON["Type"] != "String" || put.JSON["DataType"] != cloud.DataTypeEC2Image || put.JSON["Overwrite"] != false || put.Header.Get("X-Amz-Target") != "AmazonSSM.PutParameter" {
		t.Errorf("PutParameter request %v", put.JSON)
	}
	if tags, _ := json.Marshal(put.JSON["Tags"]); string(tags) != `[{"Key":"amicopier:managed","Value":"true"}]` {
		t.Errorf("tags %s", tags)
	}
	names := []string{"/golden/web/latest"}
	for range 9 {
		names = append(names, "/golden/nothing")
	}
	got, err := s.GetParameters(ctx, names)
	if err != nil || got["/golden/web/latest"].Value != img.ID || got["/golden/web/latest"].Version != 1 || got["/golden/web/latest"].DataType != cloud.DataTypeEC2Image {
		t.Fatalf("GetParameters: %v, %v", got, err)
	}
	if _, err := s.GetParameters(ctx, append(names, "/eleven")); err == nil {
		t.Fatal("eleven names in one call")
	}
	tags, err := s.ParameterTags(ctx, "/golden/web/latest")
	if err != nil || tags["amicopier:managed"] != "true" {
		t.Fatalf("tags %v, %v", tags, err)
	}
	if r := f.requests("ListTagsForResource")[0]; r.JSON["ResourceType"] != "Parameter" || r.JSON["ResourceId"] != "/golden/web/latest" {
		t.Errorf("ListTagsForResource request %v", r.JSON)
	}
	if err := s.TagParameter(ctx, "/golden/web/latest", map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutParameter(ctx, cloud.PutParameterInput{Name: "/golden/web/latest", Value: img.ID, DataType: cloud.DataTypeEC2Image}); cloud.CodeOf(err) != "ParameterAlreadyExists" {
		t.Errorf("a second create: %v", err)
	}
	if _, err := s.GetParameters(ctx, []string{"/a b"}); cloud.ClassOf(err) != cloud.ClassPermanent || cloud.CodeOf(err) != "ValidationException" {
		t.Errorf("a malformed name: %v (class %s)", err, cloud.ClassOf(err))
	}
	// Through the copier role: an assumed-role session, paced and counted.
	if r := f.requests("GetParameters")[0]; !r.Assumed || r.Account != acctA {
		t.Errorf("GetParameters as %s (assumed %v)", r.Account, r.Assumed)
	}
	if n := conn.CallCounts()[cloud.OpGetParameters]; n != 2 {
		t.Errorf("%d GetParameters counted", n)
	}
}

// TestThrottledParametersAreRetried: ThrottlingException is retried by
// the SDK's retryer like EC2's throttling.
func TestThrottledParametersAreRetried(t *testing.T) {
	c := newCloud(t)
	f := newFixture(t, c, awsfake.Options{ExternalID: "ext"}, nil)
	f.fake.FailNext("GetParameters", "ThrottlingException", "ThrottlingException")
	s, err := f.sess.Connect("run-1", ConnectOptions{}).TargetParameters(context.Background(), acctA, region1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetParameters(context.Background(), []string{"/p"}); err != nil {
		t.Fatalf("after two throttles: %v", err)
	}
	if n := len(f.requests("GetParameters")); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// TestEventRequests: PutEvents carries the bus, source, detail type,
// detail, resources and time of every entry; the failed entries come back
// as results, not an error; a read-only connector refuses the call (and
// PutParameter) before sending it.
func TestEventRequests(t *testing.T) {
	ctx := context.Background()
	c := newCloud(t)
	bus := c.AddEventBus(srcAccount, region1, "images")
	f := newFixture(t, c, awsfake.Options{ExternalID: "ext"}, nil)
	pub, err := f.sess.Connect("run-1", ConnectOptions{}).EventBus(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c.FailEventEntries(bus, 1, "InternalFailure")
	res, err := pub.PutEvents(ctx, "images", "amicopier", []cloud.Event{
		{DetailType: "amicopier Copy Available", Detail: `{"a":1}`, Resources: []string{"arn:aws:ec2:eu-west-1::image/ami-1"}, Time: at},
		{DetailType: "amicopier Run Finished", Detail: `{"b":2}`, Time: at},
	})
	if err != nil || len(res) != 2 || res[0].ErrorCode != "InternalFailure" || res[1].ID == "" || res[1].Failed() {
		t.Fatalf("results %+v, %v", res, err)
	}
	r := f.requests("PutEvents")[0]
	entries, _ := r.JSON["Entries"].([]any)
	first, _ := entries[0].(map[string]any)
	if len(entries) != 2 || first["EventBusName"] != "images" || first["Source"] != "amicopier" || first["Detail"] != `{"a":1}` ||
		first["Time"] != float64(at.Unix()) || r.Region != region1 || r.Assumed || r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" {
		t.Errorf("PutEvents request in %s: %v", r.Region, r.JSON)
	}
	if got := c.BusEvents(bus); len(got) != 1 || !got[0].Time.Equal(at) || got[0].DetailType != "amicopier Run Finished" {
		t.Errorf("bus events %+v", got)
	}

	ro := f.sess.Connect("plan-1", ConnectOptions{ReadOnly: true})
	rpub, _ := ro.EventBus(ctx, region1)
	_, err = rpub.PutEvents(ctx, "images", "amicopier", []cloud.Event{{DetailType: "x", Detail: "{}"}})
	var refused errReadOnly
	if !errors.As(err, &refused) {
		t.Errorf("read-only PutEvents: %v", err)
	}
	rs, err := ro.TargetParameters(ctx, acctA, region1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.PutParameter(ctx, cloud.PutParameterInput{Name: "/p", Value: "x"}); !errors.As(err, &refused) {
		t.Errorf("read-only PutParameter: %v", err)
	}
	if n := len(f.requests("PutEvents")) + len(f.requests("PutParameter")); n != 1 {
		t.Errorf("%d mutating requests sent, want the first PutEvents only", n)
	}
}
