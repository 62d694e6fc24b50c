package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// parseFlags parses the flags of a command that takes no operand; ok is
// false when the command must return code now: 0 after --help, which prints
// help and the flags to stdout, 2 after a usage error (an argument left over
// included).
func parseFlags(fs *flag.FlagSet, cmd, help string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if code, ok := parseFlagsOnce(fs, cmd, help, args, stdout, stderr); !ok {
		return code, false
	}
	if fs.NArg() > 0 {
		return usageError(stderr, cmd, "unexpected argument %q", fs.Arg(0)), false
	}
	return 0, true
}

// parseWithOperands parses flags that may come before or after the operands
// ("wstap bundle RUN -o F") and returns the operands; on --help it prints
// help and the flags to stdout. ok is false when the command must return code.
func parseWithOperands(fs *flag.FlagSet, cmd, help string, args []string, stdout, stderr io.Writer) (operands []string, code int, ok bool) {
	for {
		if code, ok := parseFlagsOnce(fs, cmd, help, args, stdout, stderr); !ok {
			return nil, code, false
		}
		if fs.NArg() == 0 {
			return operands, 0, true
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseFlagsOnce parses args up to the first operand, reporting errors
// through usageError and --help to stdout instead of the flag set's output.
func parseFlagsOnce(fs *flag.FlagSet, cmd, help string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, help)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0, false
	}
	if err != nil {
		return usageError(stderr, cmd, "%v", err), false
	}
	return 0, true
}
