// Command codereport prints, for the packages named (default ./reconcile),
// the functions longer than a limit and the size of the structs asked
// about: a report on the engine's structure that scripts/test.sh prints,
// not a gate.
//
//	go run ./scripts/codereport [-max-lines 80] [-struct run] [DIR ...]
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	maxLines := flag.Int("max-lines", 80, "report functions longer than this many lines")
	structs := flag.String("struct", "run", "comma-separated struct types whose fields and methods to count")
	flag.Parse()
	dirs := flag.Args()
	if len(dirs) == 0 {
		dirs = []string{"./reconcile"}
	}
	wanted := strings.Split(*structs, ",")
	failed := false
	for _, dir := range dirs {
		if err := report(dir, *maxLines, wanted); err != nil {
			fmt.Fprintln(os.Stderr, "codereport:", err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

type long struct {
	name  string
	pos   string
	lines int
}

func report(dir string, maxLines int, structs []string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	fset := token.NewFileSet()
	var longs []long
	fields := map[string]int{}
	methods := map[string]int{}
	funcs := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				funcs++
				start, end := fset.Position(d.Pos()), fset.Position(d.End())
				if n := end.Line - start.Line + 1; n > maxLines {
					longs = append(longs, long{name: funcName(d), pos: fmt.Sprintf("%s:%d", filepath.ToSlash(path), start.Line), lines: n})
				}
				if recv := receiver(d); slices.Contains(structs, recv) {
					methods[recv]++
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					ts, ok := spec.(*ast.TypeSpec)
					if !ok || !slices.Contains(structs, ts.Name.Name) {
						continue
					}
					if st, ok := ts.Type.(*ast.StructType); ok {
						for _, fl := range st.Fields.List {
							fields[ts.Name.Name] += max(1, len(fl.Names))
						}
					}
				}
			}
		}
	}
	slices.SortFunc(longs, func(a, b long) int { return b.lines - a.lines })
	fmt.Printf("%s: %d functions; %d longer than %d lines\n", dir, funcs, len(longs), maxLines)
	for _, l := range longs {
		fmt.Printf("  %4d lines  %s  %s\n", l.lines, l.name, l.pos)
	}
	for _, s := range structs {
		fmt.Printf("  struct %s: %d fields, %d methods\n", s, fields[s], methods[s])
	}
	return nil
}

func receiver(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return ""
	}
	t := d.Recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func funcName(d *ast.FuncDecl) string {
	if r := receiver(d); r != "" {
		return "(" + r + ")." + d.Name.Name
	}
	return d.Name.Name
}
