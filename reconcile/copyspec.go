package reconcile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/state"
)

// Tags amicopier reads and writes on copies. CopiedFromAMI and Encrypted
// are AMIgo's Image Copier conventions, so copies made by either tool are
// recognised by both.
const (
	TagCopiedFrom    = "CopiedFromAMI"
	TagEncrypted     = "Encrypted"
	TagManaged       = "amicopier:managed"
	TagSourceAccount = "amicopier:source-account"
	TagSourceRegion  = "amicopier:source-region"
	// TagKMSKey records the key the copy was asked to use, as configured
	// (often an alias EC2 cannot report back), so a later run can tell a
	// copy made under another key setting.
	TagKMSKey = "amicopier:kms-key"
	// TagAttempt records which attempt made the copy, so a failed copy
	// found without a state record still advances the attempt count.
	TagAttempt = "amicopier:attempt"
)

// EC2 limits on tags and names (docs/design.md, AWS facts).
const (
	maxTags          = 50
	maxTagKeyLen     = 128
	maxTagValueLen   = 256
	maxImageNameLen  = 128
	minImageNameLen  = 3
	maxDescriptionLn = 255
	maxClientToken   = 64
)

// Managed reports whether a copy carries amicopier's marker: only such
// copies are ever deregistered.
func Managed(img *cloud.Image) bool { return img.Tags[TagManaged] == "true" }

// IsCopy reports whether an image is a copy of another AMI, whoever made
// it: it carries CopiedFromAMI (AMIgo's Image Copier and amicopier set it)
// or amicopier's marker. A copy is never a source.
func IsCopy(img *cloud.Image) bool {
	if _, ok := img.Tags[TagCopiedFrom]; ok {
		return true
	}
	_, marked := img.Tags[TagManaged]
	return marked
}

// copyPlan is everything needed to make one copy of a source in a target
// account and Region, derived from the source and the configuration only.
type copyPlan struct {
	Input       cloud.CopyImageInput
	Fingerprint string
}

// copyShaper turns a source image and a target into a CopyImage request.
// It is built once per engine from the settings.
type copyShaper struct {
	copy          CopySettings
	keys          KeyPolicy
	sourceAccount string
}

func newCopyShaper(s Settings) *copyShaper {
	return &copyShaper{copy: s.Copy, keys: s.Keys, sourceAccount: s.SourceAccount}
}

// shape builds the copy request for src in account and region. attempt is
// not part of it: the ClientToken is added by the caller.
func (s *copyShaper) shape(src *cloud.Image, account, region string) (copyPlan, error) {
	data := CopyNameData{
		Name: src.Name, ID: src.ID, Region: src.Region,
		Account: account, TargetRegion: region, Tags: src.Tags,
	}
	name, err := s.renderName(data)
	if err != nil {
		return copyPlan{}, err
	}
	desc, err := render(s.copy.Description, data)
	if err != nil {
		return copyPlan{}, fmt.Errorf("description template for %s: %w", src.ID, err)
	}
	desc = truncateRunes(desc, maxDescriptionLn)
	key := s.keys.For(account, region)
	in := cloud.CopyImageInput{
		SourceImageID: src.ID,
		SourceRegion:  src.Region,
		Name:          name,
		Description:   desc,
		Encrypted:     true,
		KMSKeyID:      key,
		Tags:          s.tags(src, key),
	}
	return copyPlan{Input: in, Fingerprint: fingerprint(in)}, nil
}

// renderName renders the name template and makes the result a valid AMI
// name: disallowed characters become '-', and an over-long name is cut in
// the source name part so the source id (which keeps it unique) survives.
func (s *copyShaper) renderName(data CopyNameData) (string, error) {
	data.Name = sanitizeImageName(data.Name)
	name, err := render(s.copy.Name, data)
	if err != nil {
		return "", fmt.Errorf("name template for %s: %w", data.ID, err)
	}
	name = sanitizeImageName(name)
	if over := len(name) - maxImageNameLen; over > 0 {
		keep := max(len(data.Name)-over, 0)
		data.Name = data.Name[:keep]
		if name, err = render(s.copy.Name, data); err != nil {
			return "", fmt.Errorf("name template for %s: %w", data.ID, err)
		}
		name = sanitizeImageName(name)
		if len(name) > maxImageNameLen {
			name = name[:maxImageNameLen]
		}
	}
	for len(name) < minImageNameLen {
		name += "_"
	}
	return name, nil
}

func render(t *template.Template, data CopyNameData) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// sanitizeImageName keeps the characters EC2 allows in AMI names
// (letters, digits, space and ( ) [ ] . / - ' @ _) and replaces the rest.
func sanitizeImageName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			strings.ContainsRune(" ()[]./-'@_", r):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// tags are the copy's tags: the source's user tags the policy keeps, then
// amicopier's own, which always win and always fit (source tags are cut,
// in key order, to stay within EC2's 50-tag limit).
func (s *copyShaper) tags(src *cloud.Image, key string) map[string]string {
	own := map[string]string{
		TagCopiedFrom:    src.ID,
		TagEncrypted:     s.copy.EncryptedTagValue,
		TagManaged:       "true",
		TagSourceAccount: s.sourceAccount,
		TagSourceRegion:  src.Region,
	}
	if key != "" {
		own[TagKMSKey] = truncateRunes(key, maxTagValueLen)
	}
	room := maxTags - len(own) - 1 // one slot is TagAttempt, added per attempt
	keys := make([]string, 0, len(src.Tags))
	for k := range src.Tags {
		if _, ours := own[k]; ours || k == TagAttempt || (s.copy.KeepTag != nil && !s.copy.KeepTag(k)) || strings.HasPrefix(strings.ToLower(k), "aws:") {
			continue
		}
		if len(k) > maxTagKeyLen || strings.HasPrefix(strings.ToLower(k), "amicopier:") {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > room {
		keys = keys[:room]
	}
	out := make(map[string]string, len(keys)+len(own)+1)
	for _, k := range keys {
		out[k] = truncateRunes(src.Tags[k], maxTagValueLen)
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}

// fingerprint identifies the copy request's content: when it changes
// (another key, name or tag policy), earlier failures no longer count.
func fingerprint(in cloud.CopyImageInput) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%t\x00%s\x00", in.SourceImageID, in.SourceRegion,
		in.Name, in.Description, in.Encrypted, in.KMSKeyID)
	keys := make([]string, 0, len(in.Tags))
	for k := range in.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\x00", k, in.Tags[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ClientToken derives the CopyImage idempotency token of a pair's attempt.
// The same pair, fingerprint and attempt always give the same token, so a
// crashed or overlapping run that repeats the call gets the same image
// back instead of a second copy.
func ClientToken(key state.PairKey, fp string, attempt int) string {
	h := sha256.Sum256([]byte(key.SourceImage + "\x00" + key.Account + "\x00" + key.Region + "\x00" + fp))
	tok := "amicopier-" + strconv.Itoa(attempt) + "-" + hex.EncodeToString(h[:])
	return tok[:min(len(tok), maxClientToken)]
}
