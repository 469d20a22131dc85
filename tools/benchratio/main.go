// Command benchratio reads the output of zklock's benchmarks (go test
// -bench, any number of runs one after the other) and prints, per workload,
// the sidecar's result over the direct client's: the median ratio across
// rounds, and its range.
//
// A workload is a benchmark with two sub-benchmarks, "direct" and
// "sidecar". The benchmark declares how to compare them with a line
//
//	bench-ratio<TAB>name<TAB>metric<TAB>lower|higher<TAB>label<TAB>what<TAB>note
//
// where metric is a unit of the result lines ("ns/op", "handoffs/s"), lower
// or higher says which is better, label and what name the workload and the
// metric in words, and note (may be empty) names a difference between the
// sides that remains. A workload may declare several metrics, each on a
// line of its own. The n-th result of the sidecar side is divided by the
// n-th result of the direct side: one ratio per round. A workload without a
// declaration is compared on ns/op under its benchmark name. Results at
// several GOMAXPROCS values (-cpu) are compared separately.
//
// Usage:
//
//	benchratio [file ...]
//
// It reads standard input when given no file, and fails when it finds no
// workload with both sides.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	var in []io.Reader
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchratio:", err)
			os.Exit(2)
		}
		defer f.Close()
		in = append(in, f)
	}
	if len(in) == 0 {
		in = append(in, os.Stdin)
	}
	if err := report(io.MultiReader(in...), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
}

// decl is a workload's bench-ratio line.
type decl struct {
	metric, better, label, what, note string
}

// series is one workload's results at one GOMAXPROCS, in input order.
type series struct {
	group, procs    string
	direct, sidecar []map[string]float64 // unit -> value, per run
}

// resultName splits a result line's name into the workload, the side and
// the GOMAXPROCS suffix ("" when it is 1).
var resultName = regexp.MustCompile(`^(Benchmark\S*)/(direct|sidecar)(?:-(\d+))?$`)

func report(r io.Reader, w io.Writer) error {
	decls := map[string][]decl{}
	byKey := map[string]*series{}
	var order []*series
	procsOf := map[string]map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "bench-ratio\t"); ok {
			f := strings.Split(rest, "\t")
			if len(f) < 5 {
				return fmt.Errorf("short bench-ratio line: %q", line)
			}
			d := decl{metric: f[1], better: f[2], label: f[3], what: f[4]}
			if len(f) > 5 {
				d.note = f[5]
			}
			if d.better != "lower" && d.better != "higher" {
				return fmt.Errorf("bench-ratio line: better must be lower or higher: %q", line)
			}
			if !slices.ContainsFunc(decls[f[0]], func(o decl) bool { return o.metric == d.metric }) {
				decls[f[0]] = append(decls[f[0]], d) // each round prints its declarations again
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		m := resultName.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		values := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("result line %q: %v", line, err)
			}
			values[f[i+1]] = v
		}
		group, side, procs := m[1], m[2], m[3]
		key := group + "\x00" + procs
		s := byKey[key]
		if s == nil {
			s = &series{group: group, procs: procs}
			byKey[key] = s
			order = append(order, s)
		}
		if procsOf[group] == nil {
			procsOf[group] = map[string]bool{}
		}
		procsOf[group][procs] = true
		if side == "direct" {
			s.direct = append(s.direct, values)
		} else {
			s.sidecar = append(s.sidecar, values)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	printed := 0
	for _, s := range order {
		ds, ok := decls[s.group]
		if !ok {
			ds = []decl{{metric: "ns/op", better: "lower", label: s.group, what: "ns/op"}}
		}
		for _, d := range ds {
			label := d.label
			if len(procsOf[s.group]) > 1 {
				p := s.procs
				if p == "" {
					p = "1"
				}
				label += " (GOMAXPROCS " + p + ")"
			}
			var ratios []float64
			for i := 0; i < len(s.direct) && i < len(s.sidecar); i++ {
				dv, dok := s.direct[i][d.metric]
				sv, sok := s.sidecar[i][d.metric]
				if !dok || !sok || dv == 0 {
					return fmt.Errorf("%s: round %d has no %s on both sides", s.group, i+1, d.metric)
				}
				ratios = append(ratios, sv/dv)
			}
			if len(ratios) == 0 {
				continue
			}
			fmt.Fprintln(w, line(label, d, ratios))
			printed++
		}
	}
	if printed == 0 {
		return errors.New("no workload with both a direct and a sidecar result")
	}
	return nil
}

// line formats one workload's ratios, e.g.
// "W1 one caller, Release RPC: 1.52x direct cycle time (rounds 1.48-1.60, 5 rounds; sidecar slower in every round)".
func line(label string, d decl, ratios []float64) string {
	sorted := slices.Clone(ratios)
	slices.Sort(sorted)
	n := len(sorted)
	median := sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	lo, hi := sorted[0], sorted[n-1]
	better := func(r float64) bool { return (d.better == "lower") == (r < 1) && r != 1 }
	worse := func(r float64) bool { return (d.better == "lower") == (r > 1) && r != 1 }
	verdict := "rounds disagree"
	switch {
	case better(lo) && better(hi):
		verdict = "sidecar better in every round"
	case worse(lo) && worse(hi):
		verdict = "sidecar worse in every round"
	}
	rounds := "rounds"
	if n == 1 {
		rounds = "round"
	}
	s := fmt.Sprintf("%s: %.2fx direct %s (rounds %.2f-%.2f, %d %s; %s)", label, median, d.what, lo, hi, n, rounds, verdict)
	if d.note != "" {
		s += " [" + d.note + "]"
	}
	return s
}
