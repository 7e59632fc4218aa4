package cli

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"
)

// envLogLevel sets the default log level of every command, as it does
// the Lambda function's (lambdafn.EnvLogLevel); --log-level wins.
const envLogLevel = "AMICOPIER_LOG_LEVEL"

// logLevels and logFormats are the values of --log-level and --log-format.
func logLevels() []string  { return []string{"debug", "info", "warn", "error"} }
func logFormats() []string { return []string{"text", "json", "auto"} }

// logFlags are the logging flags of the commands that log: --log-level,
// --log-format and --quiet.
type logFlags struct {
	level  string
	format string
	quiet  bool
	// defaultLevel is the command's level when nothing else sets one.
	defaultLevel string
}

func (l *logFlags) register(fs *flag.FlagSet, defaultLevel string) {
	l.defaultLevel = defaultLevel
	fs.StringVar(&l.level, "log-level", "", "log `LEVEL`: "+strings.Join(logLevels(), ", ")+
		" (default: "+envLogLevel+", else "+defaultLevel+"; error with --quiet)")
	fs.StringVar(&l.format, "log-format", "auto", "log `FORMAT`: text, json, or auto (text on a terminal, JSON otherwise)")
	fs.BoolVar(&l.quiet, "quiet", false, "print the report and errors only: no progress, no log lines below error (unless --log-level says so)")
}

// levelName is the level in force: --log-level, else error with
// --quiet, else AMICOPIER_LOG_LEVEL, else the command's default. from
// names where it came from, for messages.
func (l *logFlags) levelName(env Env) (level, from string) {
	switch {
	case l.level != "":
		return l.level, "--log-level"
	case l.quiet:
		return "error", "--quiet"
	case env.Getenv(envLogLevel) != "":
		return strings.TrimSpace(env.Getenv(envLogLevel)), envLogLevel
	}
	return l.defaultLevel, "the default"
}

// logger builds the command's logger; its error is a usage error.
func (l *logFlags) logger(env Env) (*slog.Logger, error) {
	name, from := l.levelName(env)
	var level slog.Level
	if err := level.UnmarshalText([]byte(name)); err != nil {
		if from == envLogLevel {
			return nil, fmt.Errorf("%s=%q: want one of %s", envLogLevel, name, strings.Join(logLevels(), ", "))
		}
		return nil, fmt.Errorf("--log-level %q: want one of %s", name, strings.Join(logLevels(), ", "))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	case "auto":
		if env.Interactive {
			return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want one of %s", l.format, strings.Join(logFormats(), ", "))
}
