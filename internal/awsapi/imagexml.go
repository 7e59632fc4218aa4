package awsapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/amicopier/amicopier/internal/cloud"
)

// A DescribeImages answer decoded straight into the engine's images.
//
// The SDK decodes DescribeImages with encoding/xml into types.Image, every
// field a pointer, and most of a no-op run's CPU went there: the observation
// of 1,000 accounts x 4 Regions x 200 copies decodes 800,000 images. This
// decoder reads only the fields convertImage reads, from the whole body in
// one buffer, with no token or reflection machinery, and reuses equal tag
// keys and values from image to image. It keeps the SDK decoder's semantics on
// every field it reads (element names matched case-insensitively and
// without namespace prefix, unknown elements skipped whatever they hold, a
// repeated list appended, a repeated value replaced, text unescaped and
// line ends normalised as XML requires), and the SDK's own deserializer
// still handles every error answer. FuzzDecodeDescribeImages compares the
// two.

// imagesAnswer is one decoded DescribeImages answer.
type imagesAnswer struct {
	images []cloud.Image
	next   string
}

// decodeDescribeImages decodes a DescribeImages answer of the caller's
// images in region.
func decodeDescribeImages(body []byte, region string) (imagesAnswer, error) {
	d := &xmlDecoder{b: body}
	var out imagesAnswer
	root, ok, err := d.root()
	if err != nil || !ok {
		return out, err
	}
	// Like the SDK, read nothing after the root element.
	return out, d.fields(root, func(f element) error {
		var err error
		switch {
		case f.is("imagesSet"):
			err = d.items(f, func(item element) error {
				img := cloud.Image{Region: region, Tags: map[string]string{}}
				if err := d.image(item, &img); err != nil {
					return err
				}
				out.images = append(out.images, img)
				return nil
			})
		case f.is("nextToken"):
			out.next, err = d.value(f, unshared)
		default:
			err = d.skip(f)
		}
		return err
	})
}

// fields calls each for every child element of el, in order; each reads
// its child whole.
func (d *xmlDecoder) fields(el element, each func(f element) error) error {
	if el.selfClosing {
		return nil
	}
	for {
		f, done, err := d.child(el)
		if err != nil || done {
			return err
		}
		if err := each(f); err != nil {
			return err
		}
	}
}

// items calls each for every "item" child of list (a list's members),
// skipping any other child, as the SDK does.
func (d *xmlDecoder) items(list element, each func(item element) error) error {
	return d.fields(list, func(f element) error {
		if !f.is("item") {
			return d.skip(f)
		}
		return each(f)
	})
}

// imageFieldLength reports whether an image field read has a name of
// length n (imageId, name, description, imageOwnerId, imageState,
// creationDate, deprecationTime, stateReason, tagSet, blockDeviceMapping):
// any other element is skipped without comparing names.
func imageFieldLength(n int) bool {
	switch n {
	case 4, 6, 7, 10, 11, 12, 15, 18:
		return true
	}
	return false
}

// image decodes the fields convertImage reads.
func (d *xmlDecoder) image(el element, img *cloud.Image) error {
	var reason *[2]string // code, message
	err := d.fields(el, func(f element) error {
		var err error
		switch {
		case !imageFieldLength(len(f.name) - int(f.localAt)):
			err = d.skip(f)
		case f.is("imageId"):
			img.ID, err = d.value(f, unshared)
		case f.is("name"):
			img.Name, err = d.value(f, unshared)
		case f.is("description"):
			img.Description, err = d.value(f, unshared)
		case f.is("imageOwnerId"):
			img.OwnerID, err = d.value(f, slotOwner)
		case f.is("imageState"):
			var s string
			s, err = d.value(f, slotState)
			img.State = cloud.ImageState(s)
		case f.is("creationDate"):
			img.CreationDate, err = d.timeValue(f, slotDate)
		case f.is("deprecationTime"):
			img.DeprecationTime, err = d.timeValue(f, slotDeprecation)
		case f.is("stateReason"):
			if reason == nil {
				reason = new([2]string)
			}
			err = d.fields(f, func(f element) error {
				var err error
				switch {
				case f.is("code"):
					reason[0], err = d.value(f, slotReasonCode)
				case f.is("message"):
					reason[1], err = d.value(f, unshared)
				default:
					err = d.skip(f)
				}
				return err
			})
		case f.is("tagSet"):
			err = d.tagList(f, img.Tags)
		case f.is("blockDeviceMapping"):
			err = d.deviceList(f, &img.BlockDevices)
		default:
			err = d.skip(f)
		}
		return err
	})
	if err != nil {
		return err
	}
	if reason != nil {
		img.StateReason = reason[1]
		if img.StateReason == "" {
			img.StateReason = reason[0]
		}
	}
	return nil
}

// timeValue reads a date as convertImage does: RFC 3339, else no date.
func (d *xmlDecoder) timeValue(f element, slot int) (time.Time, error) {
	s, err := d.value(f, slot)
	if err != nil {
		return time.Time{}, err
	}
	t, perr := time.Parse(time.RFC3339, s)
	if perr != nil {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// tagList adds the tags in order: a later key replaces an earlier one, as
// convertImage's map does.
func (d *xmlDecoder) tagList(el element, tags map[string]string) error {
	n := 0 // the tag's position: its key and value are likely the previous image's
	return d.items(el, func(item element) error {
		var key, value string
		err := d.fields(item, func(f element) error {
			var err error
			switch {
			case f.is("key"):
				key, err = d.value(f, tagSlot(slotTagKeys, n))
			case f.is("value"):
				value, err = d.value(f, tagSlot(slotTagValues, n))
			default:
				err = d.skip(f)
			}
			return err
		})
		tags[key] = value
		n++
		return err
	})
}

// deviceList appends the mappings that have an ebs element, as
// convertImage keeps only those.
func (d *xmlDecoder) deviceList(el element, out *[]cloud.BlockDevice) error {
	return d.items(el, func(item element) error {
		var bd cloud.BlockDevice
		hasEBS := false
		err := d.fields(item, func(f element) error {
			switch {
			case f.is("deviceName"):
				var err error
				bd.DeviceName, err = d.value(f, slotDevice)
				return err
			case f.is("ebs"):
				hasEBS = true
				return d.ebs(f, &bd)
			}
			return d.skip(f)
		})
		if err == nil && hasEBS {
			*out = append(*out, bd)
		}
		return err
	})
}

func (d *xmlDecoder) ebs(el element, bd *cloud.BlockDevice) error {
	return d.fields(el, func(f element) error {
		var err error
		switch {
		case f.is("snapshotId"):
			bd.SnapshotID, err = d.value(f, unshared)
		case f.is("encrypted"):
			var s string
			if s, err = d.value(f, slotEncrypted); err == nil {
				var b bool
				if b, err = strconv.ParseBool(s); err != nil {
					err = fmt.Errorf("encrypted %q is not a boolean", s)
				}
				bd.Encrypted = b
			}
		case f.is("volumeSize"):
			var s string
			if s, err = d.value(f, slotSize); err == nil {
				var n int64
				if n, err = strconv.ParseInt(s, 10, 64); err != nil {
					err = fmt.Errorf("volumeSize %q is not an integer", s)
				}
				bd.VolumeSize = int32(n)
			}
		default:
			err = d.skip(f)
		}
		return err
	})
}

// xmlDecoder reads the XML of one answer held whole in b.
type xmlDecoder struct {
	b   []byte
	pos int
	// recent holds the last string of each slot of value: the images of
	// an answer mostly repeat their owner, state, tag keys and values,
	// which then share one string, found with one comparison.
	recent  [numSlots]string
	scratch []byte
}

// unshared is the slot of a value of its own (ids, names).
const unshared = -1

// The slots of value: where a field's last string is kept for the next
// image to share.
const (
	slotOwner = iota
	slotState
	slotDate
	slotDeprecation
	slotReasonCode
	slotDevice
	slotEncrypted
	slotSize
	slotTagKeys   // the first of maxTagSlots
	slotTagValues = slotTagKeys + maxTagSlots
	numSlots      = slotTagValues + maxTagSlots
	maxTagSlots   = 10
)

// tagSlot is the slot of the key or value of the n-th tag of an image;
// beyond maxTagSlots tags, unshared.
func tagSlot(first, n int) int {
	if n >= maxTagSlots {
		return unshared
	}
	return first + n
}

// element is a start tag just read; small, since every tag makes one.
type element struct {
	name        []byte // as written, prefix included
	localAt     int32  // where the name without its namespace prefix starts
	selfClosing bool
}

// is compares the local name as the SDK does: case-insensitively.
func (e element) is(name string) bool { return bytesEqualFold(e.name[e.localAt:], name) }

func bytesEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if x >= 0x80 || y >= 0x80 {
			// Non-ASCII: the general rule (no name we look for has any).
			return strings.EqualFold(string(b), s)
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

var errEOF = errors.New("unexpected end of the XML answer")

func (d *xmlDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("XML at byte %d: %s", d.pos, fmt.Sprintf(format, args...))
}

// root skips what precedes the root element (declaration, comments,
// processing instructions, directives, text) and reads its start tag; ok
// is false when the answer ends first, which the SDK reads as an empty
// answer.
func (d *xmlDecoder) root() (el element, ok bool, err error) {
	for {
		i := bytes.IndexByte(d.b[d.pos:], '<')
		if i < 0 {
			d.pos = len(d.b)
			return element{}, false, nil
		}
		d.pos += i
		switch {
		case d.has("<?"):
			err = d.skipPast("?>")
		case d.has("<!--"):
			err = d.skipComment()
		case d.has("<![CDATA["):
			err = d.skipPast("]]>")
		case d.has("<!"):
			err = d.skipDirective()
		case d.has("</"):
			return element{}, false, d.errorf("end tag before the root element")
		default:
			d.pos++
			el, err = d.startTag()
			return el, err == nil, err
		}
		if errors.Is(err, errEOF) {
			return element{}, false, nil
		}
		if err != nil {
			return element{}, false, err
		}
	}
}

func (d *xmlDecoder) has(prefix string) bool {
	return len(d.b)-d.pos >= len(prefix) && string(d.b[d.pos:d.pos+len(prefix)]) == prefix
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

func (d *xmlDecoder) skipSpace() {
	for d.pos < len(d.b) && isSpace(d.b[d.pos]) {
		d.pos++
	}
}

func (d *xmlDecoder) skipPast(end string) error {
	i := bytes.Index(d.b[d.pos:], []byte(end))
	if i < 0 {
		d.pos = len(d.b)
		return errEOF
	}
	d.pos += i + len(end)
	return nil
}

func (d *xmlDecoder) skipComment() error {
	d.pos += len("<!--")
	i := bytes.Index(d.b[d.pos:], []byte("--"))
	if i < 0 {
		d.pos = len(d.b)
		return errEOF
	}
	d.pos += i
	if !d.has("-->") {
		return d.errorf(`"--" inside a comment`)
	}
	d.pos += len("-->")
	return nil
}

// skipDirective skips a directive such as <!DOCTYPE ...> the way
// encoding/xml reads one: the byte after "<!" is taken as it is; then
// quoted strings, nested brackets and comments, up to the ">" that closes
// it.
func (d *xmlDecoder) skipDirective() error {
	d.pos += len("<!") + 1
	if d.pos > len(d.b) {
		d.pos = len(d.b)
		return errEOF
	}
	var quote byte
	depth := 0
	for {
		if d.pos >= len(d.b) {
			return errEOF
		}
		c := d.b[d.pos]
		d.pos++
		if quote == 0 && c == '>' && depth == 0 {
			return nil
		}
		for again := true; again; {
			again = false
			switch {
			case c == quote:
				quote = 0
			case quote != 0:
			case c == '\'' || c == '"':
				quote = c
			case c == '>':
				depth--
			case c == '<':
				// A comment, or a nested bracket; the bytes of "!--"
				// that matched before a mismatch are taken as they are,
				// the mismatching one is read as any other.
				matched := 0
				for matched < 3 && d.pos < len(d.b) && d.b[d.pos] == "!--"[matched] {
					matched++
					d.pos++
				}
				if matched == 3 {
					if err := d.skipPast("-->"); err != nil {
						return err
					}
					break
				}
				if d.pos >= len(d.b) {
					return errEOF
				}
				depth++
				c = d.b[d.pos]
				d.pos++
				again = true
			}
		}
	}
}

// The ASCII bytes of names, as bit sets: '-', '.', '0'-'9' and ':' below
// 64; 'A'-'Z', '_' and 'a'-'z' from 64.
const (
	nameBytesLow  uint64 = 1<<'-' | 1<<'.' | 0x3FF<<'0' | 1<<':'
	nameBytesHigh uint64 = 0x3FFFFFF<<('A'-64) | 1<<('_'-64) | 0x3FFFFFF<<('a'-64)
)

func isNameByte(c byte) bool {
	switch {
	case c >= 0x80:
		return true
	case c < 64:
		return nameBytesLow>>c&1 != 0
	}
	return nameBytesHigh>>(c-64)&1 != 0
}

// name reads an element or attribute name at pos; colon is where its
// first colon is, -1 for none.
func (d *xmlDecoder) name() (n []byte, colon int, err error) {
	b := d.b[d.pos:]
	i, ascii, colon := 0, true, -1
	for ; i < len(b) && isNameByte(b[i]); i++ {
		switch c := b[i]; {
		case c == ':':
			if colon >= 0 {
				d.pos += i
				return nil, 0, d.errorf("name %q has more than one colon", b[:i+1])
			}
			colon = i
		case c >= 0x80:
			ascii = false
		}
	}
	d.pos += i
	n = b[:i]
	if len(n) == 0 {
		if d.pos >= len(d.b) {
			return nil, 0, errEOF
		}
		return nil, 0, d.errorf("a name was expected")
	}
	if c := n[0]; '0' <= c && c <= '9' || c == '.' || c == '-' {
		return nil, 0, d.errorf("name %q starts with %q", n, c)
	}
	if !ascii && !utf8.Valid(n) {
		return nil, 0, d.errorf("name is not UTF-8")
	}
	return n, colon, nil
}

// localAt is where the local name starts, the way encoding/xml splits a
// namespace prefix off: only at a colon with text on both sides.
func localAt(n []byte, colon int) int32 {
	if colon <= 0 || colon == len(n)-1 {
		return 0
	}
	return int32(colon + 1)
}

// startTag reads a start tag after its "<": the name, the attributes
// (checked for syntax, not kept) and ">" or "/>".
func (d *xmlDecoder) startTag() (element, error) {
	n, colon, err := d.name()
	if err != nil {
		return element{}, err
	}
	el := element{name: n, localAt: localAt(n, colon)}
	if d.pos < len(d.b) && d.b[d.pos] == '>' {
		d.pos++
		return el, nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.b) {
			return el, errEOF
		}
		switch d.b[d.pos] {
		case '>':
			d.pos++
			return el, nil
		case '/':
			if !d.has("/>") {
				return el, d.errorf("expected /> in <%s>", n)
			}
			d.pos += 2
			el.selfClosing = true
			return el, nil
		}
		if _, _, err := d.name(); err != nil {
			return el, err
		}
		d.skipSpace()
		if d.pos >= len(d.b) || d.b[d.pos] != '=' {
			return el, d.errorf("attribute without a value in <%s>", n)
		}
		d.pos++
		d.skipSpace()
		if d.pos >= len(d.b) {
			return el, errEOF
		}
		q := d.b[d.pos]
		if q != '"' && q != '\'' {
			return el, d.errorf("unquoted attribute value in <%s>", n)
		}
		i := bytes.IndexByte(d.b[d.pos+1:], q)
		if i < 0 {
			return el, errEOF
		}
		if bytes.IndexByte(d.b[d.pos+1:d.pos+1+i], '<') >= 0 {
			return el, d.errorf("< in an attribute value of <%s>", n)
		}
		d.pos += i + 2
	}
}

// endTag reads "</name>" (pos after "</") and checks it closes el.
func (d *xmlDecoder) endTag(el element) error {
	if end := d.pos + len(el.name); end < len(d.b) && d.b[end] == '>' && bytes.Equal(d.b[d.pos:end], el.name) {
		d.pos = end + 1
		return nil
	}
	n, _, err := d.name()
	if err != nil {
		return err
	}
	d.skipSpace()
	if d.pos >= len(d.b) || d.b[d.pos] != '>' {
		return d.errorf("expected > after </%s", n)
	}
	d.pos++
	if !bytes.Equal(n, el.name) {
		return d.errorf("element <%s> closed by </%s>", el.name, n)
	}
	return nil
}

// child reads up to the next child element of el (text, comments,
// processing instructions and character data between children are
// ignored, as the SDK ignores them), or to el's end tag: done.
func (d *xmlDecoder) child(el element) (element, bool, error) {
	for {
		// Usually only indentation separates two tags.
		for d.pos < len(d.b) && isSpace(d.b[d.pos]) {
			d.pos++
		}
		if d.pos >= len(d.b) || d.b[d.pos] != '<' {
			i := bytes.IndexByte(d.b[d.pos:], '<')
			if i < 0 {
				d.pos = len(d.b)
				return element{}, false, errEOF
			}
			if err := d.checkText(d.b[d.pos : d.pos+i]); err != nil {
				return element{}, false, err
			}
			d.pos += i
		}
		if d.pos+1 >= len(d.b) {
			d.pos = len(d.b)
			return element{}, false, errEOF
		}
		var err error
		switch d.b[d.pos+1] {
		case '/':
			d.pos += 2
			return element{}, true, d.endTag(el)
		case '?':
			err = d.skipPast("?>")
		case '!':
			switch {
			case d.has("<!--"):
				err = d.skipComment()
			case d.has("<![CDATA["):
				err = d.skipPast("]]>")
			default:
				err = d.skipDirective()
			}
		default:
			d.pos++
			c, err := d.startTag()
			return c, false, err
		}
		if err != nil {
			return element{}, false, err
		}
	}
}

// skip skips el and everything in it, checking that its tags nest.
func (d *xmlDecoder) skip(el element) error {
	if el.selfClosing {
		return nil
	}
	// Most skipped elements hold a value: its text, then its end tag.
	if i := bytes.IndexByte(d.b[d.pos:], '<'); i >= 0 && d.pos+i+1 < len(d.b) && d.b[d.pos+i+1] == '/' {
		if err := d.checkText(d.b[d.pos : d.pos+i]); err != nil {
			return err
		}
		d.pos += i + 2
		return d.endTag(el)
	}
	for {
		c, done, err := d.child(el)
		if err != nil || done {
			return err
		}
		if err := d.skip(c); err != nil {
			return err
		}
	}
}

// value reads el's text, which must be plain character data or a single
// CDATA section (the SDK refuses anything else), up to its end tag. A
// slot (not unshared) returns the slot's last string when the text equals
// it.
func (d *xmlDecoder) value(el element, slot int) (string, error) {
	if el.selfClosing {
		return "", nil
	}
	var raw []byte
	escaped := true
	switch {
	case d.has("<![CDATA["):
		d.pos += len("<![CDATA[")
		i := bytes.Index(d.b[d.pos:], []byte("]]>"))
		if i < 0 {
			d.pos = len(d.b)
			return "", errEOF
		}
		raw, escaped = d.b[d.pos:d.pos+i], false
		d.pos += i + len("]]>")
	default:
		i := bytes.IndexByte(d.b[d.pos:], '<')
		if i < 0 {
			d.pos = len(d.b)
			return "", errEOF
		}
		raw = d.b[d.pos : d.pos+i]
		d.pos += i
	}
	if !d.has("</") {
		return "", d.errorf("<%s> holds more than text", el.name)
	}
	d.pos += 2
	if err := d.endTag(el); err != nil {
		return "", err
	}
	if escaped {
		if err := d.checkText(raw); err != nil {
			return "", err
		}
	}
	text, err := d.unescape(raw, escaped)
	if err != nil {
		return "", err
	}
	if slot < 0 {
		return string(text), nil
	}
	if r := d.recent[slot]; r == string(text) {
		return r, nil
	}
	str := string(text)
	d.recent[slot] = str
	return str, nil
}

// checkText refuses "]]>" in character data, as XML does.
func (d *xmlDecoder) checkText(text []byte) error {
	if bytes.IndexByte(text, ']') >= 0 && bytes.Contains(text, []byte("]]>")) {
		return d.errorf(`"]]>" in text`)
	}
	return nil
}

// unescape turns text into its value: character and entity references
// replaced (escaped text only) and line ends normalised to "\n".
func (d *xmlDecoder) unescape(raw []byte, escaped bool) ([]byte, error) {
	plain := true
	for _, c := range raw {
		if c == '\r' || c == '&' && escaped {
			plain = false
			break
		}
	}
	if plain {
		return raw, nil
	}
	out := d.scratch[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\r':
			out = append(out, '\n')
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
		case c == '&' && escaped:
			end := bytes.IndexByte(raw[i:], ';')
			if end < 0 {
				return nil, d.errorf("unterminated reference in text")
			}
			r, err := reference(raw[i+1 : i+end])
			if err != nil {
				return nil, d.errorf("%v", err)
			}
			out = utf8.AppendRune(out, r)
			i += end
		default:
			out = append(out, c)
		}
	}
	d.scratch = out
	return out, nil
}

// reference resolves the name of "&name;": the five predefined entities
// and character references within XML's character range.
func reference(name []byte) (rune, error) {
	switch string(name) {
	case "lt":
		return '<', nil
	case "gt":
		return '>', nil
	case "amp":
		return '&', nil
	case "apos":
		return '\'', nil
	case "quot":
		return '"', nil
	}
	if len(name) < 2 || name[0] != '#' {
		return 0, fmt.Errorf("unknown entity &%s;", name)
	}
	digits, base := name[1:], 10
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	n, err := strconv.ParseUint(string(digits), base, 32)
	if err != nil || !inCharRange(rune(n)) {
		return 0, fmt.Errorf("invalid character reference &%s;", name)
	}
	return rune(n), nil
}

// inCharRange is XML's Char production.
func inCharRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// imagesKey is the ResultMetadata key under which imagesDeserializer
// leaves a page's decoded images.
type imagesKey struct{}

// imagesDeserializer replaces the SDK's deserializer of DescribeImages for
// successful answers: it decodes the body with decodeDescribeImages and
// leaves the images in the output's ResultMetadata (imagesKey), with
// NextToken for the paginator; errors and anything unexpected go to the
// SDK's deserializer, handed the answer already received.
type imagesDeserializer struct {
	sdk    middleware.DeserializeMiddleware
	region string
	bodies *sync.Pool // of *bytes.Buffer
}

func (m *imagesDeserializer) ID() string { return m.sdk.ID() }

func (m *imagesDeserializer) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	out, md, err := next.HandleDeserialize(ctx, in)
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if err != nil || !ok || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		received := middleware.DeserializeHandlerFunc(func(context.Context, middleware.DeserializeInput) (middleware.DeserializeOutput, middleware.Metadata, error) {
			return out, md, err
		})
		return m.sdk.HandleDeserialize(ctx, in, received)
	}
	buf, _ := m.bodies.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer m.bodies.Put(buf)
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return out, md, &smithy.DeserializationError{Err: fmt.Errorf("failed to read the DescribeImages answer: %w", err)}
	}
	page, err := decodeDescribeImages(buf.Bytes(), m.region)
	if err != nil {
		snapshot := bytes.Clone(buf.Bytes()[:min(buf.Len(), 1024)])
		return out, md, &smithy.DeserializationError{Err: fmt.Errorf("failed to decode response body, %w", err), Snapshot: snapshot}
	}
	output := &ec2.DescribeImagesOutput{}
	if page.next != "" {
		output.NextToken = aws.String(page.next)
	}
	out.Result = output
	md.Set(imagesKey{}, page.images)
	return out, md, nil
}

// decodeImagesFast is the per-call option of DescribeImages that installs
// imagesDeserializer.
func decodeImagesFast(region string, bodies *sync.Pool) func(*ec2.Options) {
	return func(o *ec2.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			sdk, ok := stack.Deserialize.Get("OperationDeserializer")
			if !ok {
				return errors.New("DescribeImages: the SDK has no OperationDeserializer to replace")
			}
			_, err := stack.Deserialize.Swap(sdk.ID(), &imagesDeserializer{sdk: sdk, region: region, bodies: bodies})
			return err
		})
	}
}
