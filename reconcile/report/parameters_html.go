package report

import (
	"cmp"
	"html/template"
	"slices"
	"strings"
)

// The drift matrix's parameter grid: one row per parameter name and
// Region, one column per account, a cell per parameter coloured and
// lettered by its state (data-param, never data-cat: the pairs' cells are
// the only elements carrying data-cat). It is drawn under the pairs'
// matrix, from the report's Parameters, whenever there are any.

// parameterStyle is how a parameter state looks: a glyph, words, and
// colours from the matrix's colour-blind-safe palette (constants of this
// file, never report data, so they may be trusted as CSS).
type parameterStyle struct {
	Glyph, Label, Help     string
	Background, Foreground template.CSS
}

var parameterStyles = map[ParameterState]parameterStyle{
	ParamMissing:     {"M", "missing", "no parameter yet; run creates it", "#f6d8a0", "#5e3b00"},
	ParamStale:       {"S", "stale", "it names an older build's copy; run moves it to the newest available copy", "#e69f00", "#2b1d00"},
	ParamElsewhere:   {"E", "pointing elsewhere", "it names an image that is not a good copy of its group here; run points it at the newest available copy", "#d55e00", "#ffffff"},
	ParamForeign:     {"X", "foreign", "amicopier did not create it; reported, never overwritten unless publish.ssm.overwrite_foreign", "#2b2b2b", "#ffffff"},
	ParamConflict:    {"!", "conflict", "SSM cannot change it to a String of the configured data type; delete it or change publish.ssm.data_type", "#a34a7c", "#ffffff"},
	ParamAhead:       {"A", "ahead", "it names a newer build than the newest available copy (or one that cannot be dated); never moved back", "#0072b2", "#ffffff"},
	ParamWaiting:     {"…", "waiting", "no available copy of its group here yet", "#cde5f5", "#0b4a75"},
	ParamUnreachable: {"?", "unreachable", "the parameters could not be read", "#f1e88f", "#4f4800"},
	ParamOK:          {"✓", "ok", "it names the newest available copy", "#cfe9de", "#0b5a41"},
}

// paramsView is the grid.
type paramsView struct {
	States []paramStateView
	Accts  []paramAcctView
	Rows   []paramRowView
	// Unlisted counts the parameters counted but not listed (ok ones of
	// a report built without them).
	Unlisted int
}

type paramStateView struct {
	Name  ParameterState
	Count int
	parameterStyle
}

type paramAcctView struct{ ID, Label string }

type paramRowView struct {
	Name, Region string
	Cells        []*Parameter
}

// Title is a cell's tooltip: the parameter in words.
func (paramRowView) Title(p *Parameter) string { return parameterLine(*p) }

func newParamsView(r *Report) *paramsView {
	if len(r.ParameterCounts) == 0 {
		return nil
	}
	v := &paramsView{}
	listed := 0
	for _, s := range ParameterStates {
		v.States = append(v.States, paramStateView{Name: s, Count: r.ParameterCounts[s], parameterStyle: parameterStyles[s]})
		listed += r.ParameterCounts[s]
	}
	v.Unlisted = max(0, listed-len(r.Parameters))
	accts := map[string]string{}
	rows := map[[2]string]map[string]*Parameter{}
	for i := range r.Parameters {
		p := &r.Parameters[i]
		accts[p.Account] = cmp.Or(p.AccountName, p.Account)
		k := [2]string{p.Name, p.Region}
		if rows[k] == nil {
			rows[k] = map[string]*Parameter{}
		}
		rows[k][p.Account] = p
	}
	ids := make([]string, 0, len(accts))
	for id := range accts {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return cmp.Or(NaturalCompare(accts[a], accts[b]), strings.Compare(a, b)) })
	for _, id := range ids {
		v.Accts = append(v.Accts, paramAcctView{ID: id, Label: accts[id]})
	}
	keys := make([][2]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(NaturalCompare(a[0], b[0]), strings.Compare(a[1], b[1])) })
	for _, k := range keys {
		row := paramRowView{Name: k[0], Region: k[1], Cells: make([]*Parameter, len(ids))}
		for j, id := range ids {
			row.Cells[j] = rows[k][id]
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

// parameterCSS colours the grid's cells by state. Every value comes from
// parameterStyles, constants of this file.
func parameterCSS() template.CSS {
	var b strings.Builder
	for _, s := range ParameterStates {
		st := parameterStyles[s]
		b.WriteString(`td[data-param="` + string(s) + `"] { background: ` + string(st.Background) + `; color: ` + string(st.Foreground) + "; }\n")
	}
	return template.CSS(b.String())
}
