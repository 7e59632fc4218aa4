package awsapi

import (
	"context"
	"fmt"
	"testing"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amicopier/amicopier/internal/sim"
)

// TestNoCallIsSentTwice: against an endpoint that answers at once (the
// fake, no latency), every call is one request. Without ownBodyClient
// the SDK closed request bodies that net/http was still checking, which
// broke the connection under the answer and made the retryer send about
// one request in fifteen twice.
func TestNoCallIsSentTwice(t *testing.T) {
	c := newCloud(t)
	// Answers of a few hundred kilobytes, still being read when the
	// broken connection would close.
	ids := make([]string, 200) // and request bodies of several kilobytes
	for i := range ids {
		ids[i] = c.AddImage(srcAccount, region1, sim.ImageSpec{Name: fmt.Sprintf("golden-%d", i),
			Tags: map[string]string{"BuiltBy": "amigo", "Recipe": "golden"}}).ID
	}
	f := newFixture(t, c, awsfake.Options{}, nil)
	ec2c, err := f.sess.Connect(runID, ConnectOptions{}).Source(context.Background(), region1)
	if err != nil {
		t.Fatal(err)
	}
	api := ec2c.(*ec2Adapter).api
	const calls = 100
	before := f.fake.Calls("DescribeImages")
	for range calls {
		// Through the SDK's own decoder, which reads the answer slowly
		// (as it reads every other API's).
		out, err := api.DescribeImages(context.Background(), &ec2.DescribeImagesInput{
			Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("image-id"), Values: ids}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Images) != len(ids) {
			t.Fatalf("%d images, want %d", len(out.Images), len(ids))
		}
	}
	if got := f.fake.Calls("DescribeImages") - before; got != calls {
		t.Errorf("%d requests for %d calls: some were sent again", got, calls)
	}
}
