// Package termtable lays text tables out to fit a terminal's width.
// Columns that hold prose wrap onto further lines, columns that hold
// names are clipped with an ellipsis, and a prose column that cannot get
// a readable width moves under its row. With no width limit every cell is
// printed in full on one line, the layout for grep and scripts.
package termtable

import (
	"io"
	"strings"
	"unicode/utf8"
)

// Gap is the space between two columns.
const Gap = 2

// BelowIndent is how far a column moved under its row is indented.
const BelowIndent = 4

// Column describes one column of a table.
type Column struct {
	Header string
	// Min is the narrowest the column becomes when the table must
	// shrink; a Min at or above the widest cell means never shrink.
	Min int
	// Wrap makes a cell wider than its column wrap onto further lines
	// (at spaces, or after '+', ',' and '/'); otherwise it is clipped
	// with "…".
	Wrap bool
	// Clip shortens a cell that does not fit a clipped column (default
	// Clip); a column of "id name" cells can keep the id whole and drop
	// the name.
	Clip func(s string, width int) string
	// Below lets the column leave the row when it cannot have Min
	// columns without clipping the others: its cells are then printed
	// under their row, indented by BelowIndent and wrapped to the table's
	// width. At most one column should have it.
	Below bool
}

// Write renders rows (one cell per column; missing cells are empty)
// under the columns' headers in at most width columns. A width of 0 or
// less means no limit. Cells are flattened to one line first (runs of
// white space become one space). A table that cannot fit even with every
// column at its Min is printed at the Mins, wider than width.
func Write(w io.Writer, width int, cols []Column, rows [][]string) error {
	cells := make([][]string, len(rows))
	for i, row := range rows {
		cells[i] = make([]string, len(cols))
		for j := range cols {
			if j < len(row) {
				cells[i][j] = flatten(row[j])
			}
		}
	}
	natural, longestWord := make([]int, len(cols)), make([]int, len(cols))
	for j, c := range cols {
		natural[j] = runeLen(c.Header)
		longestWord[j] = longest(c.Header)
		for _, row := range cells {
			natural[j] = max(natural[j], runeLen(row[j]))
			if c.Wrap {
				longestWord[j] = max(longestWord[j], longest(row[j]))
			}
		}
	}
	inline := make([]bool, len(cols))
	for j := range inline {
		inline[j] = true
	}
	widths := fit(width, cols, natural, longestWord, inline)
	if width > 0 && total(widths, inline) > width {
		if b := belowColumn(cols); b >= 0 {
			inline[b] = false
			widths = fit(width, cols, natural, longestWord, inline)
		}
	}
	var out strings.Builder
	header := make([]string, len(cols))
	for j, c := range cols {
		header[j] = c.Header
	}
	writeRow(&out, header, cols, widths, inline)
	below := belowColumn(cols)
	for _, row := range cells {
		writeRow(&out, row, cols, widths, inline)
		if below >= 0 && !inline[below] && row[below] != "" {
			room := 0
			if width > 0 {
				room = max(width-BelowIndent, 20)
			}
			for _, line := range wrap(row[below], room) {
				out.WriteString(strings.Repeat(" ", BelowIndent))
				out.WriteString(line)
				out.WriteByte('\n')
			}
		}
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// NaturalWidth is the width the table takes with every cell in full on
// one line.
func NaturalWidth(cols []Column, rows [][]string) int {
	n := 0
	for j, c := range cols {
		w := runeLen(c.Header)
		for _, row := range rows {
			if j < len(row) {
				w = max(w, runeLen(flatten(row[j])))
			}
		}
		n += w
	}
	if len(cols) > 1 {
		n += Gap * (len(cols) - 1)
	}
	return n
}

// Fits reports whether a line of text fits width (0: no limit).
func Fits(s string, width int) bool { return width <= 0 || runeLen(s) <= width }

// Clip shortens s to width runes, ending it with "…" when cut; a width
// of 0 or less leaves it whole.
func Clip(s string, width int) string {
	if width <= 0 || runeLen(s) <= width {
		return s
	}
	if width == 1 {
		return "…"
	}
	r := []rune(s)
	return string(r[:width-1]) + "…"
}

// Wrap breaks text into lines of at most width runes (0: no limit).
func Wrap(text string, width int) []string { return wrap(flatten(text), width) }

func belowColumn(cols []Column) int {
	for j, c := range cols {
		if c.Below {
			return j
		}
	}
	return -1
}

// fit chooses the inline columns' widths: natural when they fit. Else
// wrapping columns shrink first (they lose nothing), widest above its
// floor first: down to their longest word, so no word is cut. If the
// table is still too wide and a Below column is inline, fit stops there
// and the caller moves that column under the rows; otherwise clipped
// columns shrink to their Min (a clipped name still shows its start),
// then wrapping columns to theirs, cutting words.
func fit(width int, cols []Column, natural, longestWord []int, inline []bool) []int {
	widths := make([]int, len(cols))
	copy(widths, natural)
	if width <= 0 {
		return widths
	}
	minOf := func(j int) int { return max(1, min(cols[j].Min, natural[j])) }
	shrink := func(wrapping bool, floor func(int) int) {
		for total(widths, inline) > width {
			best, surplus := -1, 0
			for j := range cols {
				if !inline[j] || cols[j].Wrap != wrapping {
					continue
				}
				if s := widths[j] - floor(j); s > surplus {
					best, surplus = j, s
				}
			}
			if best < 0 {
				return
			}
			widths[best]--
		}
	}
	shrink(true, func(j int) int { return max(minOf(j), min(longestWord[j], natural[j])) })
	if b := belowColumn(cols); b >= 0 && inline[b] && total(widths, inline) > width {
		return widths
	}
	shrink(false, minOf)
	shrink(true, minOf)
	return widths
}

func total(widths []int, inline []bool) int {
	n, cols := 0, 0
	for j, w := range widths {
		if inline[j] {
			n += w
			cols++
		}
	}
	if cols > 1 {
		n += Gap * (cols - 1)
	}
	return n
}

// writeRow writes one row: each inline cell wrapped or clipped to its
// width, the row as tall as its tallest cell, no trailing spaces.
func writeRow(b *strings.Builder, row []string, cols []Column, widths []int, inline []bool) {
	var lines [][]string
	height := 1
	for j, c := range cols {
		if !inline[j] {
			lines = append(lines, nil)
			continue
		}
		var cell []string
		switch {
		case runeLen(row[j]) <= widths[j]:
			cell = []string{row[j]}
		case c.Wrap:
			cell = wrap(row[j], widths[j])
		case c.Clip != nil:
			cell = []string{Clip(c.Clip(row[j], widths[j]), widths[j])}
		default:
			cell = []string{Clip(row[j], widths[j])}
		}
		height = max(height, len(cell))
		lines = append(lines, cell)
	}
	// The last inline column is not padded.
	last := -1
	for j := range cols {
		if inline[j] {
			last = j
		}
	}
	for k := range height {
		var line strings.Builder
		for j := range cols {
			if !inline[j] {
				continue
			}
			text := ""
			if k < len(lines[j]) {
				text = lines[j][k]
			}
			line.WriteString(text)
			if j != last {
				line.WriteString(strings.Repeat(" ", widths[j]-runeLen(text)+Gap))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
}

// wrap breaks flattened text into lines of at most width runes, at
// spaces or after '+', ',' and '/'; a word longer than a line is cut.
func wrap(text string, width int) []string {
	if width <= 0 || runeLen(text) <= width {
		return []string{text}
	}
	var lines []string
	var line []rune
	for _, w := range splitWords(text) {
		r := []rune(w.text)
		space := len(line) > 0 && !w.glued
		need := len(r)
		if space {
			need++
		}
		if len(line)+need <= width {
			if space {
				line = append(line, ' ')
			}
			line = append(line, r...)
			continue
		}
		if len(line) > 0 {
			lines = append(lines, string(line))
			line = line[:0]
		}
		for len(r) > width {
			lines = append(lines, string(r[:width]))
			r = r[width:]
		}
		line = append(line, r...)
	}
	if len(line) > 0 {
		lines = append(lines, string(line))
	}
	return lines
}

type word struct {
	text string
	// glued: no space before it (it follows a '+', ',' or '/' inside
	// one run of non-space characters).
	glued bool
}

// splitWords splits at spaces (dropped) and after '+', ',' and '/'
// inside a word (kept at the end of their part): the breaks wrap may use.
func splitWords(text string) []word {
	var words []word
	for _, f := range strings.Fields(text) {
		start := 0
		for i, c := range f {
			if (c == '+' || c == ',' || c == '/') && i+1 < len(f) {
				words = append(words, word{f[start : i+1], start > 0})
				start = i + 1
			}
		}
		words = append(words, word{f[start:], start > 0})
	}
	return words
}

// longest is the width of the longest part of s wrap cannot break.
func longest(s string) int {
	n := 0
	for _, w := range splitWords(s) {
		n = max(n, runeLen(w.text))
	}
	return n
}

func flatten(s string) string {
	if !strings.ContainsAny(s, " \t\n\r\v\f") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }
