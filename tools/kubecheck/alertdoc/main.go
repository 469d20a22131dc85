// Command alertdoc checks that the alerting rules of the PrometheusRules in
// rendered manifests are exactly those of a Markdown table, and lists the
// metrics their expressions read.
//
//	helm template charts/zklock --set metrics.prometheusRule.enabled=true |
//		alertdoc -doc docs/operations.md -section 'Alerts worth setting' [-metrics]
//
// The table is the first one after the "## SECTION" heading, with the
// columns alert, expression (PromQL), for, severity and why; a cell's
// enclosing backticks are dropped. Each row must be an alerting rule of the
// manifests, in the same order, with the same expr, for (an empty cell: no
// for), labels.severity and annotations.description (the why cell), and the
// manifests must have no other alert. It prints "alertdoc: N alerts match
// DOC" and exits 0, or prints each difference and exits 1. With -metrics it
// then prints the name of each metric the expressions select, one a line,
// sorted.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/prometheus/promql/parser"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// alert is one alerting rule, as the table or a PrometheusRule gives it.
type alert struct {
	name, expr, forDur, severity, description string
}

func main() {
	doc := flag.String("doc", "", "Markdown file with the table (required)")
	section := flag.String("section", "Alerts worth setting", "heading (## ...) the table follows")
	metrics := flag.Bool("metrics", false, "print the metrics the expressions select")
	flag.Parse()
	if *doc == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: alertdoc -doc FILE [-section HEADING] [-metrics] < manifests")
		os.Exit(2)
	}
	md, err := os.ReadFile(*doc)
	if err != nil {
		fatal(err)
	}
	want, err := table(md, *section)
	if err != nil {
		fatal(fmt.Errorf("%s: %w", *doc, err))
	}
	got, err := rules(os.Stdin)
	if err != nil {
		fatal(err)
	}
	if diffs := compare(want, got); len(diffs) > 0 {
		for _, d := range diffs {
			fmt.Fprintln(os.Stderr, "  -", d)
		}
		fatal(fmt.Errorf("the PrometheusRule's alerts differ from the table of %s, ## %s", *doc, *section))
	}
	if !*metrics {
		fmt.Printf("alertdoc: %d alerts match %s\n", len(want), *doc)
		return
	}
	names, err := selected(got)
	if err != nil {
		fatal(err)
	}
	for _, n := range names {
		fmt.Println(n)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "alertdoc:", err)
	os.Exit(1)
}

var header = []string{"alert", "expression (PromQL)", "for", "severity", "why"}

// table reads the rows of the first table after the heading "## section".
func table(md []byte, section string) ([]alert, error) {
	sc := bufio.NewScanner(bytes.NewReader(md))
	in, seenHeader := false, false
	var rows []alert
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "## ") {
			if in {
				break
			}
			in = strings.TrimSpace(strings.TrimPrefix(line, "## ")) == section
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 || seenHeader {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case !seenHeader:
			if !slices.Equal(cells, header) {
				return nil, fmt.Errorf("table header %q, want %q", cells, header)
			}
			seenHeader = true
		case strings.Trim(strings.Join(cells, ""), "-:") == "":
			// The delimiter row.
		case len(cells) != len(header):
			return nil, fmt.Errorf("row %q has %d cells, want %d", line, len(cells), len(header))
		default:
			rows = append(rows, alert{
				name: unquote(cells[0]), expr: unquote(cells[1]), forDur: unquote(cells[2]),
				severity: unquote(cells[3]), description: cells[4],
			})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no table after ## %s", section)
	}
	return rows, nil
}

func unquote(cell string) string {
	if len(cell) >= 2 && strings.HasPrefix(cell, "`") && strings.HasSuffix(cell, "`") {
		return cell[1 : len(cell)-1]
	}
	return cell
}

// rules reads the alerting rules of every PrometheusRule in r.
func rules(r io.Reader) ([]alert, error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []alert
	found := false
	for {
		raw, err := yr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(raw, &meta); err != nil {
			return nil, err
		}
		if meta.Kind != "PrometheusRule" {
			continue
		}
		found = true
		var pr monitoringv1.PrometheusRule
		if err := yaml.UnmarshalStrict(raw, &pr); err != nil {
			return nil, fmt.Errorf("PrometheusRule: %w", err)
		}
		for _, g := range pr.Spec.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				a := alert{name: r.Alert, expr: r.Expr.String(), severity: r.Labels["severity"], description: r.Annotations["description"]}
				if r.For != nil {
					a.forDur = string(*r.For)
				}
				out = append(out, a)
			}
		}
	}
	if !found {
		return nil, errors.New("no PrometheusRule in the manifests")
	}
	return out, nil
}

func compare(want, got []alert) []string {
	var diffs []string
	byName := map[string]alert{}
	var order []string
	for _, a := range got {
		byName[a.name] = a
		order = append(order, a.name)
	}
	var wantOrder []string
	for _, w := range want {
		wantOrder = append(wantOrder, w.name)
		g, ok := byName[w.name]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: in the table, not in the PrometheusRule", w.name))
			continue
		}
		delete(byName, w.name)
		for _, f := range []struct{ field, w, g string }{
			{"expr", w.expr, g.expr}, {"for", w.forDur, g.forDur},
			{"severity", w.severity, g.severity}, {"description (why)", w.description, g.description},
		} {
			if f.w != f.g {
				diffs = append(diffs, fmt.Sprintf("%s: %s: table %q, PrometheusRule %q", w.name, f.field, f.w, f.g))
			}
		}
	}
	for _, name := range order {
		if _, ok := byName[name]; ok {
			diffs = append(diffs, fmt.Sprintf("%s: in the PrometheusRule, not in the table", name))
		}
	}
	if len(diffs) == 0 && !slices.Equal(wantOrder, order) {
		diffs = append(diffs, fmt.Sprintf("order: table %q, PrometheusRule %q", wantOrder, order))
	}
	return diffs
}

// selected lists the metric names the alerts' expressions select.
func selected(alerts []alert) ([]string, error) {
	p := parser.NewParser(parser.Options{})
	var names []string
	for _, a := range alerts {
		e, err := p.ParseExpr(a.expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.name, err)
		}
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" && !slices.Contains(names, vs.Name) {
				names = append(names, vs.Name)
			}
			return nil
		})
	}
	slices.Sort(names)
	return names, nil
}
