package awsfake

import (
	"encoding/xml"
	"fmt"
	"testing"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

func testImages(n int) []cloud.Image {
	imgs := make([]cloud.Image, n)
	for i := range imgs {
		imgs[i] = cloud.Image{
			ID: fmt.Sprintf("ami-%017x", i), Name: fmt.Sprintf("golden-%04d-encrypted", i), OwnerID: "222222222222",
			Region: "eu-west-1", State: cloud.ImageAvailable, CreationDate: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			Tags: map[string]string{"CopiedFromAMI": fmt.Sprintf("ami-%017x", i+1000), "Encrypted": "true", "amicopier:managed": "true",
				"amicopier:source-account": "111111111111", "amicopier:source-region": "eu-west-1", "Recipe": "web & <api>"},
			BlockDevices: []cloud.BlockDevice{{DeviceName: "/dev/xvda", SnapshotID: fmt.Sprintf("snap-%017x", i), Encrypted: true, VolumeSize: 8}},
		}
	}
	imgs[0].StateReason = "a reason"
	return imgs
}

// TestImagesResponseIsWellFormed: the hand-written answer is XML that
// encoding/xml reads back whole.
func TestImagesResponseIsWellFormed(t *testing.T) {
	imgs := testImages(3)
	body := imagesResponse([]byte("reused buffer"), "req-1", imgs, "page-3")
	var resp struct {
		XMLName   xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeImagesResponse"`
		RequestID string   `xml:"requestId"`
		Images    []struct {
			ID     string `xml:"imageId"`
			Reason string `xml:"stateReason>message"`
			Tags   []struct {
				Key   string `xml:"key"`
				Value string `xml:"value"`
			} `xml:"tagSet>item"`
			Devices []struct {
				Snapshot  string `xml:"ebs>snapshotId"`
				Encrypted bool   `xml:"ebs>encrypted"`
				Size      int32  `xml:"ebs>volumeSize"`
			} `xml:"blockDeviceMapping>item"`
		} `xml:"imagesSet>item"`
		Next string `xml:"nextToken"`
	}
	if err := xml.Unmarshal(body, &resp); err != nil {
		t.Fatalf("%v in\n%s", err, body)
	}
	if resp.RequestID != "req-1" || resp.Next != "page-3" || len(resp.Images) != 3 {
		t.Fatalf("read back %+v", resp)
	}
	for i, im := range resp.Images {
		want := imgs[i]
		if im.ID != want.ID || im.Reason != want.StateReason || len(im.Tags) != len(want.Tags) || len(im.Devices) != 1 ||
			im.Devices[0].Snapshot != want.BlockDevices[0].SnapshotID || !im.Devices[0].Encrypted || im.Devices[0].Size != 8 {
			t.Errorf("image %d read back as %+v", i, im)
		}
		for _, tag := range im.Tags {
			if want.Tags[tag.Key] != tag.Value {
				t.Errorf("image %d: tag %s=%q, want %q", i, tag.Key, tag.Value, want.Tags[tag.Key])
			}
		}
	}
}

func BenchmarkImagesResponse(b *testing.B) {
	imgs := testImages(200)
	var buf []byte
	for b.Loop() {
		buf = imagesResponse(buf, "req", imgs, "")
	}
	b.SetBytes(int64(len(buf)))
}
