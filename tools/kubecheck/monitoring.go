package main

import (
	"fmt"
	"regexp"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// The patterns of the CRDs' Duration (Prometheus durations: y, w, d, h, m,
// s, ms) and of Prometheus's label and metric names.
var (
	durationPattern   = regexp.MustCompile(`^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`)
	labelNamePattern  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	metricNamePattern = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
)

// promql parses PromQL as Prometheus does with its default options, as the
// Prometheus Operator's admission webhook does for PrometheusRules.
var promql = parser.NewParser(parser.Options{})

// validatePrometheusRule checks what the PrometheusRule CRD's schema and the
// operator's webhook refuse: unnamed or duplicate groups, a rule that is
// both or neither an alert and a recording, PromQL that does not parse,
// malformed durations, label names and alert or record names.
func validatePrometheusRule(r *monitoringv1.PrometheusRule, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	groups := map[string]bool{}
	for i, g := range r.Spec.Groups {
		gp := p.Child("groups").Index(i)
		switch {
		case g.Name == "":
			errs = append(errs, field.Required(gp.Child("name"), ""))
		case groups[g.Name]:
			errs = append(errs, field.Duplicate(gp.Child("name"), g.Name))
		}
		groups[g.Name] = true
		errs = append(errs, validateDuration(gp.Child("interval"), g.Interval)...)
		errs = append(errs, validateDuration(gp.Child("query_offset"), g.QueryOffset)...)
		errs = append(errs, validateLabelNames(gp.Child("labels"), g.Labels)...)
		for j, rule := range g.Rules {
			errs = append(errs, validateRule(&rule, gp.Child("rules").Index(j))...)
		}
	}
	return errs
}

func validateRule(r *monitoringv1.Rule, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case (r.Alert == "") == (r.Record == ""):
		errs = append(errs, field.Invalid(p, "", "exactly one of alert and record must be set"))
	case r.Record != "" && !metricNamePattern.MatchString(r.Record):
		errs = append(errs, field.Invalid(p.Child("record"), r.Record, "must be a valid metric name"))
	case r.Record != "" && (r.For != nil || r.KeepFiringFor != nil || len(r.Annotations) > 0):
		errs = append(errs, field.Forbidden(p, "for, keep_firing_for and annotations are for alerting rules only"))
	}
	expr := r.Expr.String()
	if r.Expr.Type == intstr.Int {
		expr = fmt.Sprint(r.Expr.IntValue())
	}
	if expr == "" {
		errs = append(errs, field.Required(p.Child("expr"), ""))
	} else if _, err := promql.ParseExpr(expr); err != nil {
		errs = append(errs, field.Invalid(p.Child("expr"), expr, "PromQL: "+err.Error()))
	}
	errs = append(errs, validateDuration(p.Child("for"), r.For)...)
	if r.KeepFiringFor != nil {
		d := monitoringv1.Duration(*r.KeepFiringFor)
		errs = append(errs, validateDuration(p.Child("keep_firing_for"), &d)...)
	}
	errs = append(errs, validateLabelNames(p.Child("labels"), r.Labels)...)
	errs = append(errs, validateLabelNames(p.Child("annotations"), r.Annotations)...)
	return errs
}

// validateServiceMonitor checks the selector and that each endpoint names
// the port to scrape one way (port or targetPort).
func validateServiceMonitor(m *monitoringv1.ServiceMonitor, p *field.Path) field.ErrorList {
	errs := validateMonitorSelector(&m.Spec.Selector, p.Child("selector"))
	if len(m.Spec.Endpoints) == 0 {
		errs = append(errs, field.Required(p.Child("endpoints"), ""))
	}
	for i, e := range m.Spec.Endpoints {
		ep := p.Child("endpoints").Index(i)
		ports := 0
		if e.Port != "" {
			ports++
			errs = append(errs, validatePortName(ep.Child("port"), e.Port)...)
		}
		if e.TargetPort != nil {
			ports++
		}
		if ports != 1 {
			errs = append(errs, field.Invalid(ep, "", "exactly one of port and targetPort must be set"))
		}
		errs = append(errs, validateScrape(ep, e.Path, e.Interval, e.ScrapeTimeout)...)
	}
	return errs
}

// validatePodMonitor: the same for a PodMonitor (port, portNumber or
// targetPort).
func validatePodMonitor(m *monitoringv1.PodMonitor, p *field.Path) field.ErrorList {
	errs := validateMonitorSelector(&m.Spec.Selector, p.Child("selector"))
	if len(m.Spec.PodMetricsEndpoints) == 0 {
		errs = append(errs, field.Required(p.Child("podMetricsEndpoints"), ""))
	}
	for i, e := range m.Spec.PodMetricsEndpoints {
		ep := p.Child("podMetricsEndpoints").Index(i)
		ports := 0
		if e.Port != nil {
			ports++
			errs = append(errs, validatePortName(ep.Child("port"), *e.Port)...)
		}
		if e.PortNumber != nil {
			ports++
			for _, msg := range validation.IsValidPortNum(int(*e.PortNumber)) {
				errs = append(errs, field.Invalid(ep.Child("portNumber"), *e.PortNumber, msg))
			}
		}
		if e.TargetPort != nil {
			ports++
		}
		if ports != 1 {
			errs = append(errs, field.Invalid(ep, "", "exactly one of port, portNumber and targetPort must be set"))
		}
		errs = append(errs, validateScrape(ep, e.Path, e.Interval, e.ScrapeTimeout)...)
	}
	return errs
}

// validateMonitorSelector: a selector that parses. An empty one is valid
// but selects every Service or pod of the namespace: refused here, as no
// chart of ours means that.
func validateMonitorSelector(sel *metav1.LabelSelector, p *field.Path) field.ErrorList {
	s, err := metav1.LabelSelectorAsSelector(sel)
	switch {
	case err != nil:
		return field.ErrorList{field.Invalid(p, sel, err.Error())}
	case s.Empty():
		return field.ErrorList{field.Invalid(p, sel, "empty selector: selects everything in the namespace")}
	}
	return nil
}

func validateScrape(p *field.Path, path string, interval, timeout monitoringv1.Duration) field.ErrorList {
	var errs field.ErrorList
	if path != "" && path[0] != '/' {
		errs = append(errs, field.Invalid(p.Child("path"), path, "must start with /"))
	}
	errs = append(errs, validateDuration(p.Child("interval"), &interval)...)
	errs = append(errs, validateDuration(p.Child("scrapeTimeout"), &timeout)...)
	if interval != "" && timeout != "" {
		i, err1 := model.ParseDuration(string(interval))
		t, err2 := model.ParseDuration(string(timeout))
		if err1 == nil && err2 == nil && t > i {
			errs = append(errs, field.Invalid(p.Child("scrapeTimeout"), timeout, fmt.Sprintf("longer than the interval (%s)", interval)))
		}
	}
	return errs
}

func validateDuration(p *field.Path, d *monitoringv1.Duration) field.ErrorList {
	if d == nil || *d == "" {
		return nil
	}
	if !durationPattern.MatchString(string(*d)) {
		return field.ErrorList{field.Invalid(p, *d, "not a Prometheus duration (y, w, d, h, m, s, ms, largest first)")}
	}
	return nil
}

func validateLabelNames(p *field.Path, labels map[string]string) field.ErrorList {
	var errs field.ErrorList
	for k := range labels {
		if !labelNamePattern.MatchString(k) {
			errs = append(errs, field.Invalid(p.Key(k), k, "not a valid label name"))
		}
	}
	return errs
}

func validatePortName(p *field.Path, name string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortName(name) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}
