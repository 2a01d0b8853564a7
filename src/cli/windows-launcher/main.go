// kubectl-livepatch.exe: krew on Windows installs a plugin as a link named
// kubectl-livepatch.exe, which a script cannot be. This launcher runs the
// bundled script that sits beside it (kubectl-livepatch) with `node` from
// PATH, passing the arguments, the standard streams and the exit code through.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
)

// The oldest Node.js the script claims, set at build time.
var oldestNode = "?"

func main() {
	self, err := os.Executable()
	if err == nil {
		// krew's link points into its store, where the script is.
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubectl livepatch: cannot find its own file: %v\n", err)
		os.Exit(1)
	}
	script := filepath.Join(filepath.Dir(self), "kubectl-livepatch")
	cmd := exec.Command("node", append([]string{script}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Ctrl-C reaches node as well (the same console); node decides how to stop.
	signal.Ignore(os.Interrupt)
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubectl livepatch: cannot run node (Node.js %s or later must be on PATH): %v\n", oldestNode, err)
		os.Exit(1)
	}
}
