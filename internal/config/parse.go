package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxAliases bounds how many aliases one document may expand, so that a
// hostile or broken file ("billion laughs") cannot make loading explode.
const maxAliases = 1000

// MaxFileSize is the largest configuration document amicopier reads:
// 2 MiB. A large organisation's configuration (a rule and a key override
// for each of a few thousand accounts) is a few hundred KiB, so the limit
// only stops a wrong --config (/dev/zero, a disk image, a log file) before
// it fills memory: the YAML tree of a document takes some 15 to 30 times
// its size.
const MaxFileSize = 2 << 20

// Load reads the configuration file at path (see Parse). A file larger
// than MaxFileSize is refused.
func Load(path string) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// LoadWithEnv is the usual way to get a configuration: Load, then
// ApplyEnv with getenv (os.Getenv when nil), then Validate, with the
// problems of all three listed at once (see ParseWithEnv).
func LoadWithEnv(path string, getenv func(string) string) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseWithEnv(data, path, getenv)
}

// ReadFile reads a configuration file of at most MaxFileSize bytes. A
// regular file's size is checked before reading; anything else (a
// device, a pipe) is read until the limit is passed, so memory stays
// bounded whatever path names.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxFileSize {
		return nil, fmt.Errorf("read config file %s: the file is %s, over the limit of %s for a configuration file; is it the right file?",
			path, sizeWithBytes(st.Size()), sizeWithBytes(MaxFileSize))
	}
	return ReadAll(f, path)
}

// ReadAll reads a configuration document from r (standard input, say) and
// refuses one longer than MaxFileSize once it has read one byte past it.
// name stands for r in messages.
func ReadAll(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config file %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("read config file %s: more than %s read, over the limit of %s for a configuration file; is it the right file?",
			name, formatSize(MaxFileSize), sizeWithBytes(MaxFileSize))
	}
	return data, nil
}

// formatSize prints a byte count for people: "512 bytes", "1.5 KiB",
// "2 MiB" (whole units without a decimal).
func formatSize(n int64) string {
	if n == 1 {
		return "1 byte"
	}
	unit, name := int64(1), "bytes"
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size {
			unit, name = u.size, u.name
			break
		}
	}
	if n%unit == 0 {
		return strconv.FormatInt(n/unit, 10) + " " + name
	}
	return fmt.Sprintf("%.1f %s", float64(n)/float64(unit), name)
}

// sizeWithBytes adds the exact count where formatSize rounds, so that a
// size just over a limit does not read like the limit itself.
func sizeWithBytes(n int64) string {
	if n < 1<<10 {
		return formatSize(n)
	}
	return formatSize(n) + " (" + strconv.FormatInt(n, 10) + " bytes)"
}

// CheckFile is what `amicopier validate` runs: LoadWithEnv, and besides the
// file's problems, in the same list, every variable of environ (as
// os.Environ gives it) that UnknownEnv finds. A nil environ leaves that
// check out.
func CheckFile(path string, getenv func(string) string, environ []string) (*Config, error) {
	cfg, err := LoadWithEnv(path, getenv)
	unknown := UnknownEnv(environ)
	var ve *ValidationError
	switch {
	case len(unknown) == 0:
		return cfg, err
	case err == nil:
		return nil, &ValidationError{File: path, Errors: unknown}
	case errors.As(err, &ve):
		return nil, &ValidationError{File: ve.File, Errors: append(slices.Clip(ve.Errors), unknown...)}
	}
	return nil, err
}

// ParseWithEnv is LoadWithEnv for a document already in memory (the
// Lambda function's AMICOPIER_CONFIG_YAML): Parse, then ApplyEnv with
// getenv (os.Getenv when nil), then Validate. name stands for the file
// in messages.
//
// Problems with the file's keys and types do not stop the checks of the
// values: every problem of both kinds is listed at once, in the order of
// the file, and those with no line (set from the environment) last.
func ParseWithEnv(data []byte, name string, getenv func(string) string) (*Config, error) {
	cfg, problems, err := parse(data, name)
	if err != nil {
		return nil, err
	}
	if err := ApplyEnv(cfg, getenv); err != nil {
		return nil, err
	}
	problems = append(problems, cfg.problems()...)
	if len(problems) > 0 {
		return nil, &ValidationError{File: name, Errors: inFileOrder(problems)}
	}
	return cfg, nil
}

// inFileOrder sorts problems by line, keeping the order of those on one
// line; problems without a line go last.
func inFileOrder(problems []FieldError) []FieldError {
	slices.SortStableFunc(problems, func(a, b FieldError) int {
		switch {
		case a.Line == b.Line:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		}
		return a.Line - b.Line
	})
	return problems
}

// Parse decodes a YAML document over Default(). filename is only used in
// messages. Unknown keys, duplicate keys and values of the wrong type are
// all reported at once in a *ValidationError, each with its key path and
// line; a document that is not YAML at all gives a *ValidationError with
// the parser's message. Parse does not check values: call Validate (after
// ApplyEnv), whose messages carry the lines recorded here.
func Parse(data []byte, filename string) (*Config, error) {
	cfg, problems, err := parse(data, filename)
	switch {
	case err != nil:
		return nil, err
	case len(problems) > 0:
		return nil, &ValidationError{File: filename, Errors: problems}
	}
	return cfg, nil
}

// parse is Parse that goes on past problems with keys and types: it
// returns the configuration decoded as far as the file allows (a value
// that cannot be read keeps its default, and its path is recorded so
// that Validate does not report it again) with those problems. err is
// for a document that cannot be read at all (too large, not YAML).
func parse(data []byte, filename string) (*Config, []FieldError, error) {
	if len(data) > MaxFileSize {
		return nil, nil, &ValidationError{File: filename, Errors: []FieldError{{
			Message: fmt.Sprintf("the document is %s, over the limit of %s for a configuration", sizeWithBytes(int64(len(data))), sizeWithBytes(MaxFileSize)),
		}}}
	}
	cfg := Default()
	o := cfg.ensureOrigin()
	o.file = filename

	doc, second, err := decodeDocument(bytes.NewReader(data))
	switch {
	case err != nil:
		return nil, nil, syntaxError(filename, data, err)
	case second > 0:
		return nil, nil, &ValidationError{File: filename, Errors: []FieldError{{
			Line:    second,
			Message: "a second YAML document (after ---): a configuration file holds exactly one",
		}}}
	case doc == nil:
		return cfg, nil, nil // empty or comments only: all defaults
	}

	d := &decoder{origin: o}
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	d.value("", root, reflect.ValueOf(cfg).Elem())
	return cfg, d.errs, nil
}

// decodeDocument parses r as YAML. It returns a nil doc for an empty
// document (or comments only), the line of a second document if there is
// one, and the parser's error for a syntax error.
func decodeDocument(r io.Reader) (doc *yaml.Node, second int, err error) {
	dec := yaml.NewDecoder(r)
	var first yaml.Node
	if err := dec.Decode(&first); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, nil
		}
		return nil, 0, err
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return &first, extra.Line, nil
	case !errors.Is(err, io.EOF):
		return nil, 0, err
	}
	return &first, 0, nil
}

var yamlLinePrefix = regexp.MustCompile(`^yaml: line [0-9]+: `)

// syntaxError turns the parser's "yaml: line N: msg" into a FieldError at
// the line that is wrong, with a hint for the commonest causes.
func syntaxError(filename string, data []byte, err error) error {
	msg := err.Error()
	if m := yamlLinePrefix.FindStringSubmatch(msg); m != nil {
		msg = msg[len(m[0]):] // a wrong line: see syntaxErrorLine
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	line := 0
	if strings.Contains(msg, "UTF-8") {
		// The parser names no position for these.
		if l, col, b, ok := firstInvalidUTF8(data); ok {
			line = l
			msg = fmt.Sprintf("byte 0x%02X at column %d is not UTF-8 (save the file as UTF-8)", b, col)
		}
	}
	if line == 0 {
		line = syntaxErrorLine(data, err.Error())
	}
	if lines := bytes.Split(data, []byte("\n")); line > 0 && line <= len(lines) {
		switch text := lines[line-1]; {
		case bytes.ContainsRune(text, '\t'):
			msg += " (YAML does not allow tabs for indentation: use spaces)"
		case strings.Contains(msg, "end of stream") && bytes.ContainsAny(text, `"'`):
			msg += " (is a quote opened on this line not closed?)"
		case strings.HasPrefix(msg, "did not find expected key"):
			msg += " (check this line's indentation: the keys of one mapping start in the same column)"
		}
	}
	return &ValidationError{File: filename, Errors: []FieldError{{Line: line, Message: "invalid YAML: " + msg}}}
}

// syntaxErrorLine finds the line of a syntax error; want is the error's
// text. yaml.v3 reports the line where the enclosing block or flow began
// (and counts it from 0), not the line of the offending token, so the
// line is found by parsing prefixes: it is the line whose addition makes
// the parser fail exactly as it fails on the whole document. The parser
// reads its input only as far as it needs, so where it had read to when
// it failed bounds the search from above, close to the answer; the search
// gallops back from there, so it costs a few parses even in a long file.
func syntaxErrorLine(data []byte, want string) int {
	var ends []int // ends[k-1] is the offset just after line k
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	n := len(ends)
	failsAt := func(k int) bool { // the first k lines fail like the document
		if k <= 0 {
			return false
		}
		if k >= n {
			return true
		}
		_, _, err := decodeDocument(bytes.NewReader(data[:ends[k-1]]))
		return err != nil && err.Error() == want
	}
	hi := n
	r := &byteReader{data: data}
	if _, _, err := decodeDocument(r); err != nil && err.Error() == want {
		read := sort.SearchInts(ends, r.off) + 1 // the line holding the last byte read
		if read < n && failsAt(read) {
			hi = read
		}
	}
	lo := hi - 1
	for step := 2; lo > 0 && failsAt(lo); step *= 2 {
		hi, lo = lo, max(lo-step, 0)
	}
	for hi-lo > 1 { // failsAt(lo) is false, failsAt(hi) true
		mid := lo + (hi-lo)/2
		if failsAt(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// byteReader hands its data to the parser one byte at a time, so that off
// says how far the parser had to read.
type byteReader struct {
	data []byte
	off  int
}

func (r *byteReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.data[r.off]
	r.off++
	return 1, nil
}

// firstInvalidUTF8 locates the first byte of data that is not UTF-8: its
// line, its column (in characters, from 1) and its value.
func firstInvalidUTF8(data []byte) (line, col int, b byte, ok bool) {
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, col, data[i], true
		case r == '\n':
			line, col = line+1, 1
		default:
			col++
		}
		i += size
	}
	return 0, 0, 0, false
}

// decoder walks a yaml.Node tree against the Config struct by reflection,
// so that every unknown key and type error is found in one pass with its
// full path, and every key's line is kept for Validate.
type decoder struct {
	origin  *origin
	errs    []FieldError
	aliases int
}

// fail records a problem with a key (unknown, repeated...) at its line.
func (d *decoder) fail(path string, node *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, FieldError{Path: path, Line: node.Line, Message: fmt.Sprintf(format, args...)})
}

// failValue records a problem with a value at the line of its key, where
// a reader looks for it (a block value starts on the next line).
func (d *decoder) failValue(path string, node *yaml.Node, format string, args ...any) {
	d.origin.unread[path] = true
	line, ok := d.origin.lines[path]
	if !ok {
		line = node.Line
	}
	d.errs = append(d.errs, FieldError{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

// resolve follows aliases, counting them against maxAliases.
func (d *decoder) resolve(path string, node *yaml.Node) (*yaml.Node, bool) {
	for node.Kind == yaml.AliasNode {
		d.aliases++
		if d.aliases > maxAliases || node.Alias == nil {
			d.origin.unread[path] = true
		}
		switch {
		case d.aliases == maxAliases+1:
			d.fail(path, node, "too many YAML aliases (more than %d): write the values out", maxAliases)
			return nil, false
		case d.aliases > maxAliases:
			return nil, false // reported once
		case node.Alias == nil:
			d.fail(path, node, "broken YAML alias *%s", node.Value)
			return nil, false
		}
		node = node.Alias
	}
	return node, true
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// value decodes node into v, which already holds the default. A null
// node (a key with nothing after it) keeps the default.
func (d *decoder) value(path string, node *yaml.Node, v reflect.Value) {
	node, ok := d.resolve(path, node)
	if !ok || isNull(node) {
		return
	}
	t := v.Type()
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		fresh := reflect.New(t)
		if err := fresh.Interface().(yaml.Unmarshaler).UnmarshalYAML(node); err != nil {
			d.failValue(path, node, "%s", err.Error())
			return
		}
		v.Set(fresh.Elem())
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.structure(path, node, v)
	case reflect.Slice:
		d.list(path, node, v)
	case reflect.Map:
		d.mapping(path, node, v)
	default:
		d.scalar(path, node, v)
	}
}

func isNull(node *yaml.Node) bool {
	return node.Kind == yaml.ScalarNode && node.ShortTag() == "!!null"
}

// structure decodes a mapping into a struct field by field, reporting
// keys the struct does not have.
func (d *decoder) structure(path string, node *yaml.Node, v reflect.Value) {
	if node.Kind != yaml.MappingNode {
		d.failValue(path, node, "expected a mapping of %s, got %s", keyList(v.Type()), describeNode(node))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	// Merge keys ("<<: *defaults") come first whatever their position,
	// so that the mapping's own keys override them, as YAML specifies.
	for i := 0; i+1 < len(node.Content); i += 2 {
		if k := node.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			d.merge(path, node.Content[i+1], v)
		}
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, val := node.Content[i], node.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(path, k, "keys must be plain strings, got %s", describeNode(k))
			continue
		}
		kp := childPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(kp, k, "key given twice (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		idx, known := fields[k.Value]
		if !known {
			d.fail(kp, k, "unknown key; %s", suggest(k.Value, v.Type()))
			continue
		}
		d.origin.lines[kp] = k.Line
		d.value(kp, val, v.Field(idx))
	}
}

// merge applies a "<<" value: a mapping, or a list of mappings where the
// earlier ones win.
func (d *decoder) merge(path string, node *yaml.Node, v reflect.Value) {
	node, ok := d.resolve(path, node)
	if !ok {
		return
	}
	switch node.Kind {
	case yaml.MappingNode:
		d.structure(path, node, v)
	case yaml.SequenceNode:
		for i := len(node.Content) - 1; i >= 0; i-- {
			item, ok := d.resolve(path, node.Content[i])
			if !ok {
				continue
			}
			if item.Kind != yaml.MappingNode {
				d.fail(path, item, "merge (<<) needs mappings, got %s", describeNode(item))
				continue
			}
			d.structure(path, item, v)
		}
	default:
		d.fail(path, node, "merge (<<) needs a mapping, got %s", describeNode(node))
	}
}

// list decodes a sequence; the file's list replaces the default one.
func (d *decoder) list(path string, node *yaml.Node, v reflect.Value) {
	if node.Kind != yaml.SequenceNode {
		d.failValue(path, node, "expected %s, got %s", describeType(v.Type()), describeNode(node))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(node.Content), len(node.Content))
	for i, item := range node.Content {
		ip := indexPath(path, i)
		d.origin.lines[ip] = item.Line
		d.value(ip, item, out.Index(i))
	}
	v.Set(out)
}

// mapping decodes a mapping with string keys into a Go map.
func (d *decoder) mapping(path string, node *yaml.Node, v reflect.Value) {
	if node.Kind != yaml.MappingNode {
		d.failValue(path, node, "expected %s, got %s", describeType(v.Type()), describeNode(node))
		return
	}
	t := v.Type()
	out := reflect.MakeMapWithSize(t, len(node.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, val := node.Content[i], node.Content[i+1]
		k, ok := d.resolve(path, k)
		if !ok {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(path, k, "keys must be plain strings, got %s", describeNode(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.fail(path, k, "merge keys (<<) are not supported inside %s; write the entries out", path)
			continue
		}
		kp := childPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(kp, k, "key given twice (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		d.origin.lines[kp] = k.Line
		elem := reflect.New(t.Elem()).Elem()
		d.value(kp, val, elem)
		out.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), elem)
	}
	v.Set(out)
}

// scalar decodes strings, numbers and booleans.
func (d *decoder) scalar(path string, node *yaml.Node, v reflect.Value) {
	if node.Kind != yaml.ScalarNode {
		d.failValue(path, node, "expected %s, got %s", describeType(v.Type()), describeNode(node))
		return
	}
	if v.Kind() == reflect.Bool {
		d.boolean(path, node, v)
		return
	}
	// yaml.v3 truncates 2.5 into an int: refuse floats for whole numbers.
	isFloat := node.ShortTag() == "!!float"
	fresh := reflect.New(v.Type())
	if isFloat && describeType(v.Type()) == "a whole number" {
		d.failValue(path, node, "expected %s, got %s", describeType(v.Type()), describeNode(node))
		return
	}
	if err := node.Decode(fresh.Interface()); err != nil {
		d.failValue(path, node, "expected %s, got %s", describeType(v.Type()), describeNode(node))
		return
	}
	v.Set(fresh.Elem())
}

// boolean takes exactly true or false. yaml.v3 also turns YAML 1.1's
// yes, on, y... into booleans, so "enabled: y" would turn a feature on; a
// configuration is better refused than misread.
func (d *decoder) boolean(path string, node *yaml.Node, v reflect.Value) {
	val, tag := node.Value, node.ShortTag()
	quoted := node.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
	lower := strings.ToLower(val)
	switch {
	case tag == "!!bool" && (val == "true" || val == "false"):
		v.SetBool(val == "true")
	case (lower == "true" || lower == "false") && quoted:
		d.failValue(path, node, "expected true or false, got the quoted string %q: write %s without quotes", val, lower)
	case (lower == "true" || lower == "false") && tag == "!!str":
		d.failValue(path, node, "expected true or false, got the string %q: write %s without a tag", val, lower)
	case lower == "true" || lower == "false":
		d.failValue(path, node, "expected true or false, got %q: write %s in lower case", val, lower)
	case slices.Contains([]string{"y", "yes", "on", "n", "no", "off"}, lower):
		d.failValue(path, node, "expected true or false, got %q (YAML 1.1 words such as yes, on and y are not booleans here)", val)
	default:
		d.failValue(path, node, "expected true or false, got %s", describeNode(node))
	}
}

// yamlFields maps the yaml keys of a struct to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name, ok := yamlName(t.Field(i)); ok {
			fields[name] = i
		}
	}
	return fields
}

// yamlName is the key of an exported field: its yaml tag, else its
// lowercased name as yaml.v3 would use.
func yamlName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return "", false
	case "":
		return strings.ToLower(f.Name), true
	}
	return name, true
}

// sortedKeys lists a struct's yaml keys in declaration order.
func sortedKeys(t reflect.Type) []string {
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if name, ok := yamlName(t.Field(i)); ok {
			keys = append(keys, name)
		}
	}
	return keys
}

func keyList(t reflect.Type) string {
	return strings.Join(sortedKeys(t), ", ")
}

// suggest proposes the closest known key, or lists them all.
func suggest(key string, t reflect.Type) string {
	keys := sortedKeys(t)
	best, bestDist := "", -1
	for _, k := range keys {
		dist := editDistance(strings.ToLower(key), k)
		if bestDist < 0 || dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" && (bestDist <= 1 || (bestDist == 2 && len(key) >= 5) || (bestDist <= 3 && len(key) >= 10)) {
		return fmt.Sprintf("did you mean %q?", best)
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	return "expected one of: " + strings.Join(sorted, ", ")
}

// editDistance is the number of edits (insert, delete or replace one
// byte, or swap two adjacent ones: the optimal string alignment distance)
// that turn a into b. Keys and Region names are ASCII.
func editDistance(a, b string) int {
	// rows[i][j] is the distance between a[:i] and b[:j]; three rows are
	// enough, as a swap looks two back.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// describeType says in words what a field expects.
func describeType(t reflect.Type) string {
	if t == reflect.TypeFor[Duration]() {
		return "a duration such as 90s, 15m, 1h30m or 7d"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return "a list of mappings"
		}
		return "a list of " + plural(describeType(t.Elem()))
	case reflect.Map:
		return "a mapping of keys to " + plural(describeType(t.Elem()))
	case reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

func plural(s string) string {
	switch {
	case strings.HasPrefix(s, "a list of "):
		return "lists of " + strings.TrimPrefix(s, "a list of ")
	case strings.HasPrefix(s, "a mapping"):
		return "mappings" + strings.TrimPrefix(s, "a mapping")
	case s == "true or false":
		return "booleans"
	case strings.HasPrefix(s, "a duration"):
		return "durations"
	case strings.HasPrefix(s, "a "):
		return strings.TrimPrefix(s, "a ") + "s"
	}
	return s
}

// describeNode says in words what the file holds, quoting short scalars.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return strconv.Quote(v)
}
