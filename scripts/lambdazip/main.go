// Command lambdazip writes the Lambda artefact of scripts/build-lambda.sh:
// a zip holding one executable, reproducibly (see deploy.WriteZip).
//
//	go run ./scripts/lambdazip -o dist/amicopier-lambda-arm64.zip -name bootstrap path/to/binary
//
// The entries' modification time is SOURCE_DATE_EPOCH (Unix seconds) when
// set, else deploy.ZipEpoch.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/amicopier/amicopier/internal/deploy"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "lambdazip:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("lambdazip", flag.ContinueOnError)
	out := fs.String("o", "", "zip file to write (required)")
	name := fs.String("name", "bootstrap", "name of the executable inside the zip")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 1 {
		return fmt.Errorf("usage: lambdazip -o OUT.zip [-name bootstrap] BINARY")
	}
	mtime := deploy.ZipEpoch
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds: %w", s, err)
		}
		mtime = time.Unix(sec, 0).UTC()
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := deploy.WriteZip(&buf, []deploy.ZipEntry{{Name: *name, Mode: 0o755, Data: data}}, mtime); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	// Write then rename, so a failed build never leaves a truncated zip
	// where the upload step looks for one.
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}
