package awsfake

import (
	"bytes"
	"encoding/xml"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/amicopier/amicopier/internal/cloud"
)

// imagesResponse renders a DescribeImages answer. It is written by hand,
// not with encoding/xml: a benchmark serves 800,000 images from this
// process, on the cores the client it measures runs on, so the fake must
// cost as little as it can.
//
// The answer looks like EC2's, so that the client's decoding is measured
// honestly: indented by four spaces a level, and each image with the
// fields EC2 returns for an EBS-backed image (Image,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Image.html;
// EbsBlockDevice,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html).
// Those the simulator does not model have fixed, typical values (x86_64,
// hvm, ENA, gp3 at its baseline 3,000 IOPS and 125 MiB/s, Linux/UNIX billed
// as RunInstances, IMDSv2). Like EC2, a block device says whether it is
// encrypted but never with which key.
//
// dst is a buffer to reuse (Server.answer).
func imagesResponse(dst []byte, requestID string, images []cloud.Image, next string) []byte {
	w := &xmlWriter{b: dst[:0]}
	w.b = slices.Grow(w.b, 256+2700*len(images))
	w.b = append(w.b, xml.Header...)
	w.b = append(w.b, `<DescribeImagesResponse xmlns="`+ec2Namespace+`">`...)
	w.depth = 1
	w.elem("requestId", requestID)
	w.open("imagesSet")
	var keys []string
	for i := range images {
		im := &images[i]
		w.open("item")
		w.elemSafe("imageId", im.ID)
		w.start("imageLocation")
		w.text(im.OwnerID)
		w.b = append(w.b, '/')
		w.text(im.Name)
		w.end("imageLocation")
		w.elemSafe("imageState", string(im.State))
		w.elemSafe("imageOwnerId", im.OwnerID)
		w.start("creationDate")
		w.b = im.CreationDate.UTC().AppendFormat(w.b, "2006-01-02T15:04:05.000Z")
		w.end("creationDate")
		w.elem("isPublic", "false")
		w.elem("architecture", "x86_64")
		w.elem("imageType", "machine")
		w.elem("sriovNetSupport", "simple")
		w.elem("name", im.Name)
		if im.Description != "" {
			w.elem("description", im.Description)
		}
		w.elem("rootDeviceType", "ebs")
		if len(im.BlockDevices) > 0 {
			w.elem("rootDeviceName", im.BlockDevices[0].DeviceName)
		}
		w.open("blockDeviceMapping")
		for _, bd := range im.BlockDevices {
			w.open("item")
			w.elem("deviceName", bd.DeviceName)
			w.open("ebs")
			if bd.SnapshotID != "" {
				w.elemSafe("snapshotId", bd.SnapshotID)
			}
			w.start("volumeSize")
			w.b = strconv.AppendInt(w.b, int64(bd.VolumeSize), 10)
			w.end("volumeSize")
			w.elem("deleteOnTermination", "true")
			w.elem("volumeType", "gp3")
			w.elem("iops", "3000")
			w.elem("throughput", "125")
			w.elem("encrypted", strconv.FormatBool(bd.Encrypted))
			w.close("ebs")
			w.close("item")
		}
		w.close("blockDeviceMapping")
		w.elem("virtualizationType", "hvm")
		if im.StateReason != "" {
			w.open("stateReason")
			w.elem("code", "Client.UserInitiated")
			w.elem("message", im.StateReason)
			w.close("stateReason")
		}
		keys = keys[:0]
		for k := range im.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		w.open("tagSet")
		for _, k := range keys {
			w.open("item")
			w.elem("key", k)
			w.elem("value", im.Tags[k])
			w.close("item")
		}
		w.close("tagSet")
		w.elem("hypervisor", "xen")
		w.elem("enaSupport", "true")
		w.elem("platformDetails", "Linux/UNIX")
		w.elem("usageOperation", "RunInstances")
		w.elem("imdsSupport", "v2.0")
		w.elem("deregistrationProtection", "disabled")
		if !im.DeprecationTime.IsZero() {
			w.elem("deprecationTime", im.DeprecationTime.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		w.close("item")
	}
	w.close("imagesSet")
	if next != "" {
		w.elem("nextToken", next)
	}
	w.depth = 0
	w.close("DescribeImagesResponse")
	return w.b
}

// xmlWriter appends indented XML to b, with encoding/xml's escaping of
// text.
type xmlWriter struct {
	b     []byte
	depth int
}

// indents is a newline and the indentation of up to 16 levels.
const indents = "\n" +
	"                                                                "

func (w *xmlWriter) newline() {
	w.b = append(w.b, indents[:1+4*min(w.depth, 16)]...)
}

func (w *xmlWriter) open(name string) {
	w.newline()
	w.b = append(w.b, '<')
	w.b = append(w.b, name...)
	w.b = append(w.b, '>')
	w.depth++
}

func (w *xmlWriter) close(name string) {
	w.depth = max(0, w.depth-1)
	w.newline()
	w.b = append(w.b, "</"...)
	w.b = append(w.b, name...)
	w.b = append(w.b, '>')
}

// elem writes <name>text</name> on a line of its own, text escaped.
func (w *xmlWriter) elem(name, text string) {
	w.start(name)
	w.text(text)
	w.end(name)
}

// elemSafe is elem for text the simulator makes of letters, digits and
// dashes (ids, account ids, states): nothing to escape.
func (w *xmlWriter) elemSafe(name, text string) {
	w.start(name)
	w.b = append(w.b, text...)
	w.end(name)
}

// start begins a value element on a line of its own; end closes it.
func (w *xmlWriter) start(name string) {
	w.newline()
	w.b = append(w.b, '<')
	w.b = append(w.b, name...)
	w.b = append(w.b, '>')
}

func (w *xmlWriter) end(name string) {
	w.b = append(w.b, "</"...)
	w.b = append(w.b, name...)
	w.b = append(w.b, '>')
}

// text escapes like xml.EscapeText, with a fast path for text that needs
// none.
func (w *xmlWriter) text(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '&' || c == '<' || c == '>' || c == '"' || c == '\'' {
			var esc bytes.Buffer
			_ = xml.EscapeText(&esc, []byte(s))
			w.b = append(w.b, esc.Bytes()...)
			return
		}
	}
	w.b = append(w.b, s...)
}
