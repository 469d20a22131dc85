package zktest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// FourLetterWord sends the four-letter word cmd (for example "ruok", "srvr"
// or "mntr") to the ZooKeeper server at addr and returns its whole reply. The
// timeout bounds the entire exchange. The command must be in the server's
// 4lw.commands.whitelist; servers started by this package allow ruok, srvr,
// mntr, stat, cons, conf, envi, isro, wchc, wchs and dump.
func FourLetterWord(addr, cmd string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return string(b), fmt.Errorf("zktest: %s %s: %w", addr, cmd, err)
	}
	return string(b), nil
}

// parseMode returns the value of the "Mode: " line of a srvr, stat or mntr
// (zk_server_state) reply, or "" if there is none (for instance "This
// ZooKeeper instance is not currently serving requests").
func parseMode(reply string) string {
	sc := bufio.NewScanner(strings.NewReader(reply))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "Mode:"); ok {
			return strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "zk_server_state"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// PacketsReceived returns how many requests the ZooKeeper server at addr
// has received since it started (mntr's zk_packets_received).
func PacketsReceived(addr string) (int64, error) {
	return mntr(addr, "zk_packets_received")
}

// WatchCount returns how many watches the server at addr keeps, data and
// children watches, each path counted once per session that watches it
// (mntr's zk_watch_count). ZooKeeper 3.8's wchc and wchp list data watches
// only: comparing the two tells whether children watches are set.
func WatchCount(addr string) (int64, error) {
	return mntr(addr, "zk_watch_count")
}

// mntr returns the number mntr shows for key.
func mntr(addr, key string) (int64, error) {
	out, err := FourLetterWord(addr, "mntr", 5*time.Second)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, key+"\t"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("zktest: %s: no %s in mntr", addr, key)
}
