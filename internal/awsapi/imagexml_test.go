package awsapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

// cannedClient answers every request with one body.
type cannedClient struct{ body []byte }

func (c cannedClient) Do(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/xml"}},
		Body: io.NopCloser(bytes.NewReader(c.body)), ContentLength: int64(len(c.body))}, nil
}

// sdkDecode decodes a DescribeImages answer the SDK's way: its own
// deserializer, then convertImage.
func sdkDecode(t testing.TB, body []byte) (imagesAnswer, error) {
	t.Helper()
	client := ec2.New(ec2.Options{
		Region: region1, BaseEndpoint: aws.String("http://127.0.0.1:1"), HTTPClient: cannedClient{body},
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1,
	})
	out, err := client.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil {
		return imagesAnswer{}, err
	}
	var a imagesAnswer
	for i := range out.Images {
		a.images = append(a.images, convertImage(&out.Images[i], region1))
	}
	a.next = aws.ToString(out.NextToken)
	return a, nil
}

// fakeAnswer is a real answer of the fake (the format EC2 uses) for the
// source account's images in region1, in pages of pageSize.
func fakeAnswer(t testing.TB, c *sim.Cloud, pageSize int) []byte {
	t.Helper()
	fake := awsfake.New(c, awsfake.Options{BaseAccount: srcAccount, PageSize: pageSize})
	t.Cleanup(fake.Close)
	form := url.Values{"Action": {"DescribeImages"}, "Version": {"2016-11-15"}, "Owner.1": {"self"}, "IncludeDisabled": {"true"}}
	req, err := http.NewRequest(http.MethodPost, fake.URL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+awsfake.BaseAccessKeyID+"/20260101/"+region1+"/ec2/aws4_request, SignedHeaders=host, Signature=00")
	req.Header.Set("X-Amz-Security-Token", awsfake.BaseSessionToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %v: %s", resp.StatusCode, err, b)
	}
	return b
}

// item wraps image fields in an answer.
func answer(items ...string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><imagesSet>` +
		strings.Join(items, "") + `</imagesSet></DescribeImagesResponse>`
}

func item(fields string) string { return "<item>" + fields + "</item>" }

var decodeCases = []struct {
	name string
	body string
}{
	{"empty body", ""},
	{"only a declaration", `<?xml version="1.0"?>`},
	{"no images", answer()},
	{"self-closing root", `<DescribeImagesResponse/>`},
	{"next token", `<DescribeImagesResponse><imagesSet/><nextToken>page-3</nextToken></DescribeImagesResponse>`},
	{"fields", answer(item(`<imageId>ami-1</imageId><name>web</name><description>d</description><imageOwnerId>111111111111</imageOwnerId>` +
		`<imageState>available</imageState><creationDate>2026-01-02T03:04:05.000Z</creationDate>`))},
	{"bad creation date is no date", answer(item(`<imageId>ami-1</imageId><creationDate>yesterday</creationDate>`))},
	{"deprecation time", answer(item(`<imageId>ami-1</imageId><deprecationTime>2027-03-01T00:00:00.000Z</deprecationTime>`),
		item(`<imageId>ami-2</imageId><deprecationTime>soon</deprecationTime>`))},
	{"state reason message, else code", answer(
		item(`<imageId>ami-1</imageId><stateReason><code>Client.X</code><message>it failed</message></stateReason>`),
		item(`<imageId>ami-2</imageId><stateReason><code>Client.X</code></stateReason>`),
		item(`<imageId>ami-3</imageId><stateReason/>`))},
	{"tags, a repeated key and a second tagSet", answer(item(`<imageId>ami-1</imageId><tagSet><item><key>a</key><value>1</value></item>` +
		`<item><key>a</key><value>2</value></item><item><value>no key</value></item></tagSet><tagSet><item><key>b</key></item></tagSet>`))},
	{"devices: only those with ebs", answer(item(`<imageId>ami-1</imageId><blockDeviceMapping>` +
		`<item><deviceName>/dev/xvda</deviceName><ebs><snapshotId>snap-1</snapshotId><volumeSize>8</volumeSize><encrypted>true</encrypted></ebs></item>` +
		`<item><deviceName>/dev/sdb</deviceName><virtualName>ephemeral0</virtualName></item>` +
		`<item><deviceName>/dev/sdc</deviceName><ebs/></item></blockDeviceMapping>`))},
	{"bad boolean", answer(item(`<blockDeviceMapping><item><ebs><encrypted>yes</encrypted></ebs></item></blockDeviceMapping>`))},
	{"bad integer", answer(item(`<blockDeviceMapping><item><ebs><volumeSize>8GiB</volumeSize></ebs></item></blockDeviceMapping>`))},
	{"unknown elements, nested, skipped", answer(item(`<imageId>ami-1</imageId><productCodes><item><productCode>x</productCode><type>m</type></item></productCodes>` +
		`<imageId2>no</imageId2><name>n</name>`))},
	{"names are case-insensitive", answer(item(`<IMAGEID>ami-1</IMAGEID><Name>n</Name>`))},
	{"namespace prefixes", `<ec2:DescribeImagesResponse xmlns:ec2="http://ec2.amazonaws.com/doc/2016-11-15/"><ec2:imagesSet><ec2:item>` +
		`<ec2:imageId>ami-1</ec2:imageId></ec2:item></ec2:imagesSet></ec2:DescribeImagesResponse>`},
	{"entities and character references", answer(item(`<imageId>ami-1</imageId><name>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#233;&#x263A;</name>`))},
	{"line ends normalised", answer(item("<imageId>ami-1</imageId><description>one\r\ntwo\rthree\n</description>"))},
	{"CDATA value", answer(item(`<imageId>ami-1</imageId><name><![CDATA[<raw> & ]]></name>`))},
	{"comments, instructions and space between elements", answer(item("\n  <!-- c -->\n  <?pi x?><imageId>ami-1</imageId>\n"))},
	{"attributes", answer(item(`<imageId a="1" b='>'>ami-1</imageId>`))},
	{"a doctype", `<!DOCTYPE x [<!ENTITY y "z">]>` + answer(item(`<imageId>ami-1</imageId>`))},
	{"unknown entity", answer(item(`<name>&nbsp;</name>`))},
	{"value with a child", answer(item(`<name>a<b/>c</name>`))},
	{"value with a comment", answer(item(`<name>a<!-- c -->b</name>`))},
	{"mismatched end", answer(item(`<name>a</nom>`))},
	{"truncated", answer(item(`<imageId>ami-1</imageId>`))[:100]},
	{"text after the root", answer() + "garbage<"},
}

// TestDecodeDescribeImagesMatchesSDK: the decoder reads every answer as
// the SDK's deserializer and convertImage read it, and fails where the SDK
// fails.
func TestDecodeDescribeImagesMatchesSDK(t *testing.T) {
	c := newCloud(t)
	{
		key := c.AddKey(srcAccount, region1, "golden")
		c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "golden", Description: `web & "api" <v2>`,
			Tags:    map[string]string{"amicopier:targets": "*", "Recipe": "ubuntu ☺", "Empty": ""},
			Devices: []sim.DeviceSpec{{Size: 8, KMSKeyARN: key}, {Size: 100}}})
		c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "failed", State: cloud.ImageFailed, StateReason: "copy failed: key disabled"})
		c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "pending", State: cloud.ImagePending})
		c.AddImage(srcAccount, region1, sim.ImageSpec{Name: "next page", DeprecationTime: time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)})
	}
	fake := fakeAnswer(t, c, 3)
	cases := append([]struct{ name, body string }{{"an answer of the fake", string(fake)}}, decodeCases...)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			want, wantErr := sdkDecode(t, []byte(tt.body))
			got, err := decodeDescribeImages([]byte(tt.body), region1)
			switch {
			case wantErr != nil && err == nil:
				t.Fatalf("decoded %+v, the SDK fails: %v", got, wantErr)
			case wantErr == nil && err != nil:
				t.Fatalf("error %v, the SDK decodes %+v", err, want)
			case err == nil && !reflect.DeepEqual(got, want):
				t.Fatalf("decoded\n%+v\nthe SDK\n%+v", got, want)
			}
		})
	}
	if want, _ := sdkDecode(t, fake); len(want.images) != 3 || want.next == "" {
		t.Fatalf("the fake's answer holds %d images, next %q: the case tests too little", len(want.images), want.next)
	}
}

// FuzzDecodeDescribeImages: whatever the answer, the decoder neither
// panics nor disagrees with the SDK on an answer both decode; an answer
// the SDK decodes, it decodes too.
func FuzzDecodeDescribeImages(f *testing.F) {
	for _, tt := range decodeCases {
		f.Add([]byte(tt.body))
	}
	f.Add([]byte(answer(item(`<imageId>ami-1</imageId><tagSet><item><key>k</key><value>v</value></item></tagSet>` +
		`<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><snapshotId>snap-1</snapshotId><volumeSize>8</volumeSize>` +
		`<encrypted>false</encrypted></ebs></item></blockDeviceMapping><stateReason><code>c</code><message>m</message></stateReason>`))))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeDescribeImages(body, region1)

		want, wantErr := sdkDecode(t, body)
		if wantErr != nil {
			return // the SDK refuses it: so may we, or read it leniently
		}
		if err != nil {
			t.Fatalf("error %v, the SDK decodes %+v", err, want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded\n%+v\nthe SDK\n%+v", got, want)
		}
	})
}

// BenchmarkDecodeDescribeImages compares the two decoders on an answer of
// 200 copies as the fake (and EC2) writes it.
func BenchmarkDecodeDescribeImages(b *testing.B) {
	c := sim.New()
	if err := c.AddAccount(srcAccount, "source", "", cloud.AccountActive); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		c.AddImage(srcAccount, region1, sim.ImageSpec{Name: fmt.Sprintf("golden-%04d-encrypted-ami-0123456789abcdef%d", i, i%10),
			Tags: map[string]string{"CopiedFromAMI": fmt.Sprintf("ami-%017x", i), "Encrypted": "true", "amicopier:managed": "true",
				"amicopier:source-account": "111111111111", "amicopier:source-region": "eu-west-1", "Recipe": fmt.Sprintf("golden-%04d", i)},
			Devices: []sim.DeviceSpec{{Size: 8, AWSManagedKey: true}}})
	}
	body := fakeAnswer(b, c, 1000)
	b.Run("amicopier", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := decodeDescribeImages(body, region1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sdk", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := sdkDecode(b, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDescribeImagesFastPath: the adapter's DescribeImages pages come
// from decodeDescribeImages, and an error answer still reaches the SDK's
// deserializer (its code classified as always).
func TestDescribeImagesFastPath(t *testing.T) {
	c := newCloud(t)
	for i := range 3 {
		c.AddImage(srcAccount, region1, sim.ImageSpec{Name: fmt.Sprintf("golden-%d", i)})
	}
	f := newFixture(t, c, awsfake.Options{PageSize: 2}, nil)
	conn := f.sess.Connect(runID, ConnectOptions{})
	port, err := conn.Source(context.Background(), region1)
	if err != nil {
		t.Fatal(err)
	}
	a := port.(*ec2Adapter)
	p := ec2.NewDescribeImagesPaginator(a.api, &ec2.DescribeImagesInput{Owners: []string{"self"}, MaxResults: aws.Int32(5)})
	pages, perPage := 0, []int{2, 1}
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background(), decodeImagesFast(region1, &conn.bodies))
		if err != nil {
			t.Fatal(err)
		}
		imgs, ok := page.ResultMetadata.Get(imagesKey{}).([]cloud.Image)
		if !ok || len(page.Images) != 0 {
			t.Fatalf("page %d: not decoded by decodeDescribeImages (%d SDK images)", pages, len(page.Images))
		}
		if pages < len(perPage) && len(imgs) != perPage[pages] {
			t.Errorf("page %d: %d images, want %d", pages, len(imgs), perPage[pages])
		}
		pages++
	}
	if pages != 2 {
		t.Errorf("%d pages, want 2 (the paginator follows the decoded NextToken)", pages)
	}

	f.fake.FailNext("DescribeImages", "UnauthorizedOperation")
	_, err = a.DescribeImages(context.Background(), cloud.ImageQuery{})
	if code := cloud.CodeOf(err); code != "UnauthorizedOperation" || cloud.ClassOf(err) != cloud.ClassAccessDenied {
		t.Errorf("error %v: code %q, class %v", err, code, cloud.ClassOf(err))
	}
}
