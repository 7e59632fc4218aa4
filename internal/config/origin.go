package config

import (
	"regexp"
	"strconv"
	"strings"
)

// origin records where the values of a Config came from, keyed by the
// field path used in error messages ("targets.rules[1].accounts[0]").
type origin struct {
	// file is the name errors print before the line number.
	file string
	// lines maps a path to the line of its key (or list item) in file.
	lines map[string]int
	// env maps a path to the environment variable that set it.
	env map[string]string
	// unread holds the paths whose value in file could not be read (of
	// the wrong type, say): the default stands in for it, and the problem
	// is reported already.
	unread map[string]bool
}

func (c *Config) ensureOrigin() *origin {
	if c.origin == nil {
		c.origin = &origin{lines: map[string]int{}, env: map[string]string{}, unread: map[string]bool{}}
	}
	return c.origin
}

// reported says whether a problem with path is told already by the
// file's value at path, or at one of its ancestors, being unreadable. A
// value the environment set is judged on its own.
func (o *origin) reported(path string) bool {
	if o == nil || len(o.unread) == 0 {
		return false
	}
	if _, ok := o.env[path]; ok {
		return false
	}
	for p := path; p != ""; p = parentPath(p) {
		if o.unread[p] {
			return true
		}
	}
	return false
}

// locate returns the path as errors print it and the line to print with
// it. A value set from the environment names the variable instead of a
// line. A path the file does not hold borrows the line of its closest
// ancestor that it does hold, which is where the value is to be added.
func (o *origin) locate(path string) (string, int) {
	if o == nil {
		return path, 0
	}
	if name, ok := o.env[path]; ok {
		return path + " (from " + name + ")", 0
	}
	for p := path; p != ""; p = parentPath(p) {
		if line, ok := o.lines[p]; ok {
			return path, line
		}
	}
	return path, 0
}

// parentPath strips the last element of a path: "a.b[2]" -> "a.b",
// "a.b" -> "a", "a" -> "".
func parentPath(p string) string {
	// Quoted map keys (a["x.y"]) may contain dots and brackets; walk back
	// over them as a unit.
	if strings.HasSuffix(p, "\"]") {
		if i := strings.LastIndex(p, "[\""); i >= 0 {
			return p[:i]
		}
	}
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// childPath is the path of a mapping key under parent. Keys that would be
// ambiguous with the dotted syntax are quoted: filters["aws:x.y"].
func childPath(parent, key string) string {
	if !plainKey.MatchString(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// indexPath is the path of a list item.
func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}
