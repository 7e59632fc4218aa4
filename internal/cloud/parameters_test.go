package cloud

import (
	"strings"
	"testing"
	"time"
)

func TestCheckParameterName(t *testing.T) {
	for _, tc := range []struct {
		name, problem string
	}{
		{"/golden/ubuntu-jammy/latest", ""},
		{"golden-latest", ""},
		{"/a_b.c-d/E9", ""},
		{"/" + strings.Repeat("x", MaxParameterNameLength-1), ""},
		{"/" + strings.Repeat("x", MaxParameterNameLength), "at most 1011"},
		{strings.Repeat("/l", 15), ""},
		{strings.Repeat("/l", 16), "at most 15"},
		{"", "empty"},
		{"/golden/my recipe/latest", "spaces"},
		{"/golden/ubuntu:22.04", `":"`},
		{"/golden/é", `"é"`},
		{"golden/latest", "must start with /"},
		{"/golden//latest", "empty"},
		{"/golden/", "empty"},
		{"/", "empty"},
		{"/aws/x", "reserved"},
		{"/AWSome", "reserved"},
		{"ssm-params", "reserved"},
		{"/golden/aws", ""},
	} {
		err := CheckParameterName(tc.name)
		switch {
		case tc.problem == "" && err != nil:
			t.Errorf("%q: %v", tc.name, err)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("%q: %v, want a problem with %q", tc.name, err, tc.problem)
		}
	}
}

// FuzzCheckParameterName: rendered names come from AMI tags, which anyone
// with ec2:CreateTags in the source account writes. Whatever the input,
// what the check accepts is a name SSM's rules allow.
func FuzzCheckParameterName(f *testing.F) {
	for _, s := range []string{"/golden/web/latest", "a", "/aws", "/a//b", "/é", strings.Repeat("/x", 16)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckParameterName(name) != nil {
			return
		}
		levels := strings.Split(strings.TrimPrefix(name, "/"), "/")
		first := strings.ToLower(levels[0])
		if len(name) > MaxParameterNameLength || len(levels) > MaxParameterLevels || !parameterNameChars.MatchString(name) ||
			strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") || (strings.Contains(name, "/") && name[0] != '/') ||
			strings.Contains(name, "//") || strings.HasSuffix(name, "/") {
			t.Fatalf("accepted %q", name)
		}
	})
}

func TestEventSizeAndSource(t *testing.T) {
	e := Event{DetailType: "amicopier Run Finished", Detail: `{"é":1}`, Resources: []string{"arn:aws:ec2:eu-west-1::image/ami-1"}}
	if n := EventSize("amicopier", e); n != 9+22+8+34 {
		t.Errorf("size %d", n)
	}
	e.Time = time.Unix(1, 0)
	if n := EventSize("amicopier", e); n != 9+22+8+34+14 {
		t.Errorf("size with Time %d", n)
	}
	for _, tc := range []struct {
		source string
		ok     bool
	}{{"amicopier", true}, {"com.example.images", true}, {"", false}, {"aws.ec2", false}, {"AWS.x", false}, {"a b", false}, {strings.Repeat("s", 257), false}} {
		if err := CheckEventSource(tc.source); (err == nil) != tc.ok {
			t.Errorf("CheckEventSource(%q) = %v", tc.source, err)
		}
	}
	if BusRegion("arn:aws:events:eu-west-1:111111111111:event-bus/x") != "eu-west-1" || BusRegion("x") != "" {
		t.Error("BusRegion")
	}
	for code, retry := range map[string]bool{"ThrottlingException": true, "InternalFailure": true, "": true, "MalformedDetail": false, "AccessDeniedException": false} {
		if EntryRetryable(code) != retry {
			t.Errorf("EntryRetryable(%q) = %v", code, !retry)
		}
	}
}
