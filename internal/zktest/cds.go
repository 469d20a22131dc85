package zktest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Class data sharing: the JVM can map the ZooKeeper classes from an archive
// instead of loading and verifying them from the jars, which saves roughly a
// quarter of a server's start-up time and CPU. The archive is made once per
// machine (and per JDK, class path and JVM flags): the first server started
// while it is missing runs with -XX:ArchiveClassesAtExit, and is ended with
// SIGTERM rather than SIGKILL at cleanup so that the JVM writes the archive
// on exit. Every later server maps it with -XX:SharedArchiveFile. Because the
// JVM runs with -Xshare:auto, an archive that does not fit is merely ignored.
// Set ZKTEST_CDS=0 to turn this off.

const maxCDSAttempts = 2 // per process

var cds struct {
	mu        sync.Mutex
	attempts  int
	producing bool     // a server of this process is making the archive
	lock      *os.File // flock held on <archive>.lock while producing
}

// cdsDir is where archives are kept.
func cdsDir() string { return filepath.Join(os.TempDir(), "zktest-cds") }

// cdsArchivePath returns the archive path for a JVM command line (flags
// other than system properties matter, as do the JDK and the jars), or ""
// if CDS is off.
func cdsArchivePath(rt javaRuntime, flags []string) string {
	if os.Getenv("ZKTEST_CDS") == "0" {
		return ""
	}
	h := sha256.New()
	fmt.Fprintln(h, "zktest-cds-v1")
	stamp := func(path string) {
		if real, err := filepath.EvalSymlinks(path); err == nil {
			path = real
		}
		st, err := os.Stat(path)
		if err == nil {
			fmt.Fprintln(h, path, st.Size(), st.ModTime().UnixNano())
		} else {
			fmt.Fprintln(h, path, "missing")
		}
	}
	stamp(rt.java)
	if real, err := filepath.EvalSymlinks(rt.java); err == nil {
		// The JDK's own base archive and modules.
		home := filepath.Dir(filepath.Dir(real))
		stamp(filepath.Join(home, "lib", "modules"))
		stamp(filepath.Join(home, "lib", "server", "classes.jsa"))
	}
	for _, jar := range strings.Split(rt.classpath, string(os.PathListSeparator)) {
		stamp(jar)
	}
	for _, f := range flags {
		if strings.HasPrefix(f, "-D") {
			continue
		}
		if f == "-Xshare:off" || strings.HasPrefix(f, "-XX:SharedArchiveFile") || strings.HasPrefix(f, "-XX:ArchiveClassesAtExit") {
			return "" // the user manages sharing
		}
		fmt.Fprintln(h, f)
	}
	return filepath.Join(cdsDir(), hex.EncodeToString(h.Sum(nil))[:24]+".jsa")
}

// cdsArgs returns the JVM flags for sharing classes and, if this server is
// to make the archive, the temporary file it will write.
func cdsArgs(archive string) (args []string, tmp string) {
	if archive == "" {
		return nil, ""
	}
	if _, err := os.Stat(archive); err == nil {
		return []string{"-XX:SharedArchiveFile=" + archive}, ""
	}
	cds.mu.Lock()
	defer cds.mu.Unlock()
	if cds.producing || cds.attempts >= maxCDSAttempts {
		return nil, ""
	}
	if err := os.MkdirAll(cdsDir(), 0o777); err != nil {
		return nil, ""
	}
	_ = os.Chmod(cdsDir(), 0o777|os.ModeSticky)
	f, err := os.OpenFile(archive+".lock", os.O_RDONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil, ""
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close() // another process is making it
		return nil, ""
	}
	if _, err := os.Stat(archive); err == nil { // made while we looked
		f.Close()
		return []string{"-XX:SharedArchiveFile=" + archive}, ""
	}
	// Leftovers of producers that died: nobody else can be writing them.
	if old, _ := filepath.Glob(archive + ".tmp.*"); len(old) > 0 {
		for _, o := range old {
			os.Remove(o)
		}
	}
	cds.attempts++
	cds.producing = true
	cds.lock = f
	tmp = archive + ".tmp." + strconv.Itoa(os.Getpid()) + "." + strconv.Itoa(cds.attempts)
	return []string{"-XX:ArchiveClassesAtExit=" + tmp}, tmp
}

// cdsFinish is called once the process that was to write tmp has exited.
// If it exited cleanly, the archive is checked by mapping it in a JVM run
// with the same flags and then put in place.
func cdsFinish(rt javaRuntime, flags []string, archive, tmp string, clean bool) {
	defer func() {
		os.Remove(tmp)
		cds.mu.Lock()
		cds.producing = false
		if cds.lock != nil {
			cds.lock.Close()
			cds.lock = nil
		}
		cds.mu.Unlock()
	}()
	if !clean {
		return
	}
	if st, err := os.Stat(tmp); err != nil || st.Size() == 0 {
		return
	}
	var check []string
	for _, f := range flags {
		if strings.HasPrefix(f, "-Xshare:") || strings.HasPrefix(f, "-D") {
			continue
		}
		check = append(check, f)
	}
	check = append(check, "-Xshare:on", "-XX:SharedArchiveFile="+tmp, "-cp", rt.classpath, "-version")
	if err := exec.Command(rt.java, check...).Run(); err != nil {
		return
	}
	_ = os.Rename(tmp, archive)
}
