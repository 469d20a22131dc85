package e2e

import "syscall"

// sysProcAttr makes the kernel SIGKILL a zklockd if the thread that started
// it dies, so a test binary that crashes or times out leaves no daemon
// behind. The starting goroutine keeps its OS thread locked for the life of
// the process (see daemon.spawn).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
