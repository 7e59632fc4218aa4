package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/sim"
)

// ServeOptions tune Serve.
type ServeOptions struct {
	// PortFile receives the port, once the server listens (written
	// whole: a reader never sees part of it), and is removed when Serve
	// returns.
	PortFile string
	// Ready, when set, is called with the base URL once the server
	// listens, after PortFile is written.
	Ready func(url string)
	// CopiesComplete makes a copy available as soon as CopyImage accepts
	// it. Otherwise copies stay pending: the simulated clock, which
	// decides when copies finish, does not move in a served organisation.
	CopiesComplete bool
}

// Serve builds the scenario's organisation and serves it with awsfake on
// 127.0.0.1 (a port the system picks) until ctx is done: the EC2, STS
// and Organizations protocols for the built binary, and the inspection
// endpoints (inspect.go) for checkers. Latency and token buckets are the
// scenario's.
//
// Every request is one simulated call: the simulator hands each listing
// whole to the fake, which cuts the pages AWS would (1,000 images,
// 20 accounts: the page sizes of the lower bound), so each page is one
// call, with its latency and its token, counted where AWS counts it.
// Retries are the client's (its SDK's), each attempt a request.
func Serve(ctx context.Context, sc Scenario, o ServeOptions) error {
	if sc.Kind == Chaos {
		return fmt.Errorf("scenario %s is a chaos scenario: it has no organisation to serve", sc.Name)
	}
	if sc.Kind == Event {
		return fmt.Errorf("scenario %s is an event scenario: its organisation is built by RunEvent, not served", sc.Name)
	}
	if o.PortFile == "" {
		return errors.New("serve: no port file")
	}
	opts := []sim.Option{sim.WithPageSize(math.MaxInt32), sim.WithOrgPageSize(math.MaxInt32)}
	if o.CopiesComplete {
		opts = append(opts, sim.WithCopyDuration(0))
	}
	w, err := build(ctx, sc, opts...)
	if err != nil {
		return err
	}
	in := &inspector{w: w, exp: w.expect()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("serve %s: %w", sc.Name, err)
	}
	fake, err := awsfake.Start(w.cloud, awsfake.Options{
		BaseAccount: SourceAccount, PageSize: sim.DefaultPageSize, OrgPageSize: sim.DefaultOrgPageSize,
		CountOnly: true, Inspect: in,
	}, l)
	if err != nil {
		_ = l.Close()
		return fmt.Errorf("serve %s: %w", sc.Name, err)
	}
	defer fake.Close()
	in.fake.Store(fake)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	if err := writeWhole(o.PortFile, port+"\n"); err != nil {
		return fmt.Errorf("serve %s: port file: %w", sc.Name, err)
	}
	defer os.Remove(o.PortFile)
	if o.Ready != nil {
		o.Ready(fake.URL())
	}
	<-ctx.Done()
	return nil
}

// writeWhole writes data to path through a temporary file in the same
// directory and a rename, so a reader sees all of it or nothing.
func writeWhole(path, data string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// ReadPortFile reads a port file Serve wrote: ok is false while it does
// not exist yet.
func ReadPortFile(path string) (port int, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	port, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || port <= 0 || port > 65535 {
		return 0, false, fmt.Errorf("port file %s holds %q, not a port", path, strings.TrimSpace(string(b)))
	}
	return port, true, nil
}
