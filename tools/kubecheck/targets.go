package main

import (
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// pods is a pod template of the input: its labels and its containers' named
// ports.
type pods struct {
	labels labels.Set
	ports  map[string]bool
}

// checkTargets checks, across the documents read, that what selects finds
// something to scrape or to send to: a Service with a selector selects a
// pod template whose containers have each named targetPort; a
// ServiceMonitor selects a Service with each endpoint's port; a PodMonitor
// selects a pod template with each endpoint's port. It returns one error
// per miss, naming the object.
func checkTargets(objs []runtime.Object) []error {
	var templates []pods
	var services []*corev1.Service
	for _, o := range objs {
		var spec *corev1.PodTemplateSpec
		switch o := o.(type) {
		case *corev1.Pod:
			spec = &corev1.PodTemplateSpec{ObjectMeta: o.ObjectMeta, Spec: o.Spec}
		case *appsv1.Deployment:
			spec = &o.Spec.Template
		case *appsv1.StatefulSet:
			spec = &o.Spec.Template
		case *appsv1.DaemonSet:
			spec = &o.Spec.Template
		case *appsv1.ReplicaSet:
			spec = &o.Spec.Template
		case *batchv1.Job:
			spec = &o.Spec.Template
		case *batchv1.CronJob:
			spec = &o.Spec.JobTemplate.Spec.Template
		case *corev1.Service:
			services = append(services, o)
		}
		if spec == nil {
			continue
		}
		p := pods{labels: spec.Labels, ports: map[string]bool{}}
		for _, cs := range [][]corev1.Container{spec.Spec.InitContainers, spec.Spec.Containers} {
			for _, c := range cs {
				for _, port := range c.Ports {
					if port.Name != "" {
						p.ports[port.Name] = true
					}
				}
			}
		}
		templates = append(templates, p)
	}
	// selected: the pod templates sel selects.
	selected := func(sel labels.Selector) []pods {
		var out []pods
		for _, t := range templates {
			if sel.Matches(t.labels) {
				out = append(out, t)
			}
		}
		return out
	}
	hasPort := func(ps []pods, name string) bool {
		for _, p := range ps {
			if !p.ports[name] {
				return false
			}
		}
		return len(ps) > 0
	}

	var errs []error
	miss := func(o metav1.Object, kind, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s/%s: %s", kind, o.GetName(), fmt.Sprintf(format, args...)))
	}
	for _, s := range services {
		if len(s.Spec.Selector) == 0 {
			continue
		}
		ps := selected(labels.SelectorFromSet(s.Spec.Selector))
		if len(ps) == 0 {
			miss(s, "Service", "selector %v selects no pod template of the input", s.Spec.Selector)
			continue
		}
		for _, port := range s.Spec.Ports {
			if port.TargetPort.Type == intstr.String && !hasPort(ps, port.TargetPort.StrVal) {
				miss(s, "Service", "targetPort %q is not a named containerPort of every pod it selects", port.TargetPort.StrVal)
			}
		}
	}
	for _, o := range objs {
		switch m := o.(type) {
		case *monitoringv1.ServiceMonitor:
			sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
			if err != nil {
				continue // validate reports it
			}
			var found []*corev1.Service
			for _, s := range services {
				if sel.Matches(labels.Set(s.Labels)) {
					found = append(found, s)
				}
			}
			if len(found) == 0 {
				miss(m, "ServiceMonitor", "selector selects no Service of the input")
				continue
			}
			for _, e := range m.Spec.Endpoints {
				if e.Port == "" {
					continue
				}
				for _, s := range found {
					named := false
					for _, sp := range s.Spec.Ports {
						named = named || sp.Name == e.Port
					}
					if !named {
						miss(m, "ServiceMonitor", "endpoint port %q is not a port of Service/%s", e.Port, s.Name)
					}
				}
			}
		case *monitoringv1.PodMonitor:
			sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
			if err != nil {
				continue
			}
			ps := selected(sel)
			if len(ps) == 0 {
				miss(m, "PodMonitor", "selector selects no pod template of the input")
				continue
			}
			for _, e := range m.Spec.PodMetricsEndpoints {
				if e.Port != nil && !hasPort(ps, *e.Port) {
					miss(m, "PodMonitor", "endpoint port %q is not a named containerPort of every pod it selects", *e.Port)
				}
			}
		}
	}
	return errs
}
