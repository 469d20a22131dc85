package zktest

import "syscall"

// sysProcAttr makes the kernel SIGKILL the server if the thread that
// started it dies, which covers test binaries that crash, time out or are
// killed before their cleanups run. The starting goroutine keeps its OS
// thread locked for the life of the process (see Server.spawn).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
