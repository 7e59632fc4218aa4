package cli

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// CPUProfileEnv names a file that receives a CPU profile of the whole
// process (go tool pprof reads it). A debugging aid for measuring the
// binary itself (the wire benchmark uses it), listed by validate --help
// among the variables that override no setting.
const CPUProfileEnv = "AMICOPIER_CPUPROFILE"

// startCPUProfile starts the CPU profile CPUProfileEnv asks for; stop
// ends it and closes the file. Without the variable it does nothing.
func startCPUProfile(getenv func(string) string) (stop func(), err error) {
	path := getenv(CPUProfileEnv)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", CPUProfileEnv, path, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s=%q: %w", CPUProfileEnv, path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
