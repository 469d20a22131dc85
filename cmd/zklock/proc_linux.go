package main

import (
	"os"
	"syscall"

	"golang.org/x/term"
)

// commandAttr runs the command in a process group of its own, in the
// terminal's foreground if stdin is a terminal (so that it may read it and
// gets the terminal's Ctrl-C), and kills it if zklock dies.
func commandAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		a.Foreground = true
		a.Ctty = fd
	}
	return a
}
