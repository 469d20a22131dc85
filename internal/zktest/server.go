package zktest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const stopTimeout = 10 * time.Second

// Server is one ZooKeeper server process of a Cluster. Its methods may be
// called from any goroutine, except Start, which must be called from the test
// goroutine.
type Server struct {
	c       *Cluster
	id      int
	dir     string
	dataDir string
	logPath string

	clientPort, peerPort, electionPort int

	mu   sync.Mutex
	proc *process // nil when not running
}

// process is one run of a server JVM.
type process struct {
	cmd       *exec.Cmd
	done      chan struct{} // closed once the process has been reaped
	err       error         // cmd.Wait's result; read only after done
	logOffset int64         // size of the log when the process started
	flags     []string      // JVM options
	cdsTmp    string        // class data sharing archive this JVM writes on exit
	paused    bool          // guarded by Server.mu
}

// ID returns the server's myid (its index plus one).
func (s *Server) ID() int { return s.id }

// Addr returns the client address, "127.0.0.1:port".
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.clientPort))
}

// LogPath returns the file that receives the server's log4j log and the
// JVM's stdout and stderr. Restarts append to it.
func (s *Server) LogPath() string { return s.logPath }

// Dir returns the server's directory, holding zoo.cfg, the log and DataDir.
func (s *Server) Dir() string { return s.dir }

// DataDir returns the server's dataDir (snapshots, transaction logs, myid).
func (s *Server) DataDir() string { return s.dataDir }

// PID returns the process id of the running server, or 0 if it is not
// running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Running reports whether the server process is alive (possibly paused).
func (s *Server) Running() bool {
	p := s.current()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Paused reports whether the server is stopped by Pause.
func (s *Server) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && s.proc.paused
}

// Mode asks the server (srvr) for its mode: "leader", "follower",
// "observer" or "standalone"; "" if it is up but not serving.
func (s *Server) Mode() (string, error) {
	reply, err := FourLetterWord(s.Addr(), "srvr", time.Second)
	if err != nil {
		return "", err
	}
	return parseMode(reply), nil
}

// current returns the running process, if any.
func (s *Server) current() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// writeFiles (re)creates the server directory for a fresh cluster start.
func (s *Server) writeFiles() error {
	if err := os.RemoveAll(s.dataDir); err != nil {
		return err
	}
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return err
	}
	if !s.c.standalone {
		if err := os.WriteFile(filepath.Join(s.dataDir, "myid"), []byte(strconv.Itoa(s.id)+"\n"), 0o644); err != nil {
			return err
		}
	}
	files := map[string]string{
		filepath.Join(s.dir, "zoo.cfg"):          s.c.zooCfg(s),
		filepath.Join(s.dir, "log4j.properties"): fmt.Sprintf(log4jProperties, s.logPath),
		filepath.Join(s.dir, "logback.xml"):      fmt.Sprintf(logbackXML, s.logPath),
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// launch starts the server process if it is not running.
func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	p, err := s.spawn()
	if err != nil {
		return err
	}
	s.proc = p
	return nil
}

// spawn starts the JVM. The process is started, and reaped, by a goroutine
// that holds its OS thread for the life of the process: on Linux the server
// gets SIGKILL when the thread that forked it dies (Pdeathsig), so the thread
// must not be recycled while the server runs.
func (s *Server) spawn() (*process, error) {
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	var offset int64
	if st, err := logf.Stat(); err == nil {
		offset = st.Size()
	}
	main := quorumMain
	if s.c.standalone {
		main = standaloneMain
	}
	flags := jvmFlags(s.c.cfg, s.dir)
	share, cdsTmp := cdsArgs(s.c.cdsArchive)
	args := append(append(append([]string(nil), flags...), share...),
		"-cp", s.c.rt.classpath, main, filepath.Join(s.dir, "zoo.cfg"))
	fmt.Fprintf(logf, "==== zktest %s: starting server %d: %s %q\n",
		time.Now().Format(time.RFC3339Nano), s.id, s.c.rt.java, args)

	cmd := exec.Command(s.c.rt.java, args...)
	cmd.Dir = s.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	p := &process{cmd: cmd, done: make(chan struct{}), logOffset: offset, flags: flags, cdsTmp: cdsTmp}

	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		if cdsTmp != "" {
			cdsFinish(s.c.rt, flags, s.c.cdsArchive, cdsTmp, false)
		}
		return nil, fmt.Errorf("zktest: starting server %d: %w", s.id, err)
	}
	return p, nil
}

// signalIfRunning sends sig to the running process without waiting, waking
// it up first if it is paused so that it can act on the signal.
func (s *Server) signalIfRunning(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.cmd.Process.Signal(sig)
	if s.proc.paused {
		_ = s.proc.cmd.Process.Signal(syscall.SIGCONT)
		s.proc.paused = false
	}
}

// stop sends sig and waits for the process to exit, escalating to SIGKILL
// after timeout.
func (s *Server) stop(sig syscall.Signal, timeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	if p.paused {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
	}
	clean := sig == syscall.SIGTERM
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		clean = false
	}
	s.reap(p, clean)
}

// reap forgets the exited process p. clean tells whether it exited because
// of SIGTERM, so that an archive it wrote on exit can be trusted.
// s.mu must be held.
func (s *Server) reap(p *process, clean bool) {
	s.proc = nil
	if p.cdsTmp != "" {
		cdsFinish(s.c.rt, p.flags, s.c.cdsArchive, p.cdsTmp, clean)
	}
}

// shutdown ends the server for good at cleanup: with SIGKILL, except for a
// server that is to write the class data sharing archive on exit.
func (s *Server) shutdown() {
	if s.makesArchive() {
		s.stop(syscall.SIGTERM, stopTimeout)
		return
	}
	s.stop(syscall.SIGKILL, time.Minute)
}

// cleanupSignal is the signal shutdown starts with.
func (s *Server) cleanupSignal() syscall.Signal {
	if s.makesArchive() {
		return syscall.SIGTERM
	}
	return syscall.SIGKILL
}

func (s *Server) makesArchive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && s.proc.cdsTmp != ""
}

// Stop sends SIGTERM (a clean shutdown) and waits for the process to exit,
// sending SIGKILL if it has not exited after 10s. It does nothing if the
// server is not running. The data directory is kept for Start.
func (s *Server) Stop() { s.stop(syscall.SIGTERM, stopTimeout) }

// Kill sends SIGKILL (a crash) and waits for the process to exit. It does
// nothing if the server is not running. The data directory is kept for
// Start.
func (s *Server) Kill() { s.stop(syscall.SIGKILL, time.Minute) }

// WipeData removes the server's snapshots and transaction logs (the
// version-2 directory of DataDir), as a lost disk would, and keeps its myid:
// started again, it has no history. Wipe every server of an ensemble, or
// the others bring the data back. The server must not be running.
func (s *Server) WipeData() error {
	if s.Running() {
		return fmt.Errorf("zktest: server %d: WipeData while it runs", s.id)
	}
	return os.RemoveAll(filepath.Join(s.dataDir, "version-2"))
}

// Pause freezes the server with SIGSTOP: it keeps its sockets but stops
// responding, like a hung or partitioned machine.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.paused {
		_ = s.proc.cmd.Process.Signal(syscall.SIGSTOP)
		s.proc.paused = true
	}
}

// Resume continues a paused server with SIGCONT. It does not wait for the
// server to serve again; see Cluster.WaitServing.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && s.proc.paused {
		_ = s.proc.cmd.Process.Signal(syscall.SIGCONT)
		s.proc.paused = false
	}
}

// Start starts a stopped or killed server again with the same ports,
// configuration and data, and waits until it serves (for an ensemble member:
// until it has joined a quorum as leader or follower, so a majority must be
// running). A running server is resumed if paused and waited for. Start
// fails the test with t.Fatalf, quoting the log, if the server does not serve
// within the start timeout; call it from the test goroutine.
func (s *Server) Start() {
	s.c.t.Helper()
	if err := s.TryStart(); err != nil {
		s.c.t.Fatalf("%v", err)
	}
}

// TryStart is Start returning an error instead of failing the test; it may
// be called from any goroutine. On error the server is killed.
func (s *Server) TryStart() error {
	if err := s.startProcess(); err != nil {
		return err
	}
	if err := s.c.waitServing([]*Server{s}, s.c.cfg.startTimeout); err != nil {
		s.Kill()
		return err
	}
	return nil
}

// startProcess starts the process if needed (resuming it if paused) without
// waiting for it to serve.
func (s *Server) startProcess() error {
	s.mu.Lock()
	if p := s.proc; p != nil {
		select {
		case <-p.done: // died on its own: reap and restart
			s.reap(p, false)
		default:
			if p.paused {
				_ = p.cmd.Process.Signal(syscall.SIGCONT)
				p.paused = false
			}
			s.mu.Unlock()
			return nil
		}
	}
	s.mu.Unlock()
	return s.launch()
}

// logShowsBindFailure reports whether the log written by the current (or
// last) process mentions a port that could not be bound.
func (s *Server) logShowsBindFailure() bool {
	var offset int64
	if p := s.current(); p != nil {
		offset = p.logOffset
	}
	f, err := os.Open(s.logPath)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return false
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte("Address already in use"))
}
