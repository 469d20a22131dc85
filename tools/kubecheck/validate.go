package main

import (
	"fmt"
	"path"
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)

// validate runs the part of the API server's validation that decoding does
// not: a subset, aimed at the mistakes a chart can make.
func validate(obj runtime.Object) []error {
	var errs field.ErrorList
	if acc, ok := obj.(metav1.ObjectMetaAccessor); ok {
		nameFn := apivalidation.NameIsDNSSubdomain
		if _, ok := obj.(*corev1.Service); ok {
			nameFn = apivalidation.NameIsDNS1035Label
		}
		errs = append(errs, apivalidation.ValidateObjectMeta(acc.GetObjectMeta().(*metav1.ObjectMeta), false, nameFn, field.NewPath("metadata"))...)
	}
	spec := field.NewPath("spec")
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = append(errs, validatePodSpec(&o.Spec, spec)...)
	case *appsv1.Deployment:
		errs = append(errs, validateWorkload(o.Spec.Replicas, o.Spec.Selector, &o.Spec.Template, spec)...)
	case *appsv1.StatefulSet:
		errs = append(errs, validateWorkload(o.Spec.Replicas, o.Spec.Selector, &o.Spec.Template, spec)...)
	case *appsv1.ReplicaSet:
		errs = append(errs, validateWorkload(o.Spec.Replicas, o.Spec.Selector, &o.Spec.Template, spec)...)
	case *appsv1.DaemonSet:
		errs = append(errs, validateWorkload(nil, o.Spec.Selector, &o.Spec.Template, spec)...)
	case *batchv1.Job:
		errs = append(errs, validatePodTemplate(&o.Spec.Template, spec.Child("template"))...)
	case *batchv1.CronJob:
		errs = append(errs, validatePodTemplate(&o.Spec.JobTemplate.Spec.Template, spec.Child("jobTemplate", "spec", "template"))...)
	case *monitoringv1.PrometheusRule:
		errs = append(errs, validatePrometheusRule(o, spec)...)
	case *monitoringv1.ServiceMonitor:
		errs = append(errs, validateServiceMonitor(o, spec)...)
	case *monitoringv1.PodMonitor:
		errs = append(errs, validatePodMonitor(o, spec)...)
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

func validateWorkload(replicas *int32, sel *metav1.LabelSelector, tpl *corev1.PodTemplateSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if replicas != nil && *replicas < 0 {
		errs = append(errs, field.Invalid(p.Child("replicas"), *replicas, "must be >= 0"))
	}
	switch s, err := metav1.LabelSelectorAsSelector(sel); {
	case sel == nil:
		errs = append(errs, field.Required(p.Child("selector"), ""))
	case err != nil:
		errs = append(errs, field.Invalid(p.Child("selector"), sel, err.Error()))
	case s.Empty():
		errs = append(errs, field.Invalid(p.Child("selector"), sel, "empty selector is invalid for a workload"))
	case !s.Matches(labels.Set(tpl.Labels)):
		errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), tpl.Labels, "`selector` does not match template `labels`"))
	}
	if rp := tpl.Spec.RestartPolicy; rp != "" && rp != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(p.Child("template", "spec", "restartPolicy"), rp, []string{string(corev1.RestartPolicyAlways)}))
	}
	return append(errs, validatePodTemplate(tpl, p.Child("template"))...)
}

func validatePodTemplate(tpl *corev1.PodTemplateSpec, p *field.Path) field.ErrorList {
	errs := metav1validation.ValidateLabels(tpl.Labels, p.Child("metadata", "labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(tpl.Annotations, p.Child("metadata", "annotations"))...)
	return append(errs, validatePodSpec(&tpl.Spec, p.Child("spec"))...)
}

func validatePodSpec(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	volumes := map[string]bool{}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		vp := p.Child("volumes").Index(i)
		errs = append(errs, dnsLabel(vp.Child("name"), v.Name)...)
		if volumes[v.Name] {
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		}
		volumes[v.Name] = true
		if n := countSet(v.VolumeSource); n > 1 {
			errs = append(errs, field.Forbidden(vp, fmt.Sprintf("%d volume sources set: may not specify more than 1", n)))
		}
		if s := v.Secret; s != nil {
			if s.SecretName == "" {
				errs = append(errs, field.Required(vp.Child("secret", "secretName"), ""))
			}
			errs = append(errs, validateMode(vp.Child("secret", "defaultMode"), s.DefaultMode)...)
			errs = append(errs, validateItems(vp.Child("secret", "items"), s.Items)...)
		}
		if c := v.ConfigMap; c != nil {
			if c.Name == "" {
				errs = append(errs, field.Required(vp.Child("configMap", "name"), ""))
			}
			errs = append(errs, validateMode(vp.Child("configMap", "defaultMode"), c.DefaultMode)...)
			errs = append(errs, validateItems(vp.Child("configMap", "items"), c.Items)...)
		}
	}
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	names := map[string]bool{}
	for i := range spec.InitContainers {
		errs = append(errs, validateContainer(&spec.InitContainers[i], true, volumes, names, p.Child("initContainers").Index(i))...)
	}
	for i := range spec.Containers {
		errs = append(errs, validateContainer(&spec.Containers[i], false, volumes, names, p.Child("containers").Index(i))...)
	}
	if sa := spec.ServiceAccountName; sa != "" {
		for _, msg := range apivalidation.NameIsDNSSubdomain(sa, false) {
			errs = append(errs, field.Invalid(p.Child("serviceAccountName"), sa, msg))
		}
	}
	if g := spec.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *g, "must be >= 0"))
	}
	if sc := spec.SecurityContext; sc != nil {
		errs = append(errs, validateIDs(p.Child("securityContext"), sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot)...)
		if sc.FSGroup != nil && *sc.FSGroup < 0 {
			errs = append(errs, field.Invalid(p.Child("securityContext", "fsGroup"), *sc.FSGroup, "must be >= 0"))
		}
	}
	return errs
}

func validateContainer(c *corev1.Container, init bool, volumes, names map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, dnsLabel(p.Child("name"), c.Name)...)
	if names[c.Name] {
		errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
	}
	names[c.Name] = true
	if strings.TrimSpace(c.Image) == "" {
		errs = append(errs, field.Required(p.Child("image"), ""))
	}
	sidecar := false
	if rp := c.RestartPolicy; rp != nil {
		switch {
		case !init:
			errs = append(errs, field.Forbidden(p.Child("restartPolicy"), "may not be set for non-init containers"))
		case *rp != corev1.ContainerRestartPolicyAlways:
			errs = append(errs, field.NotSupported(p.Child("restartPolicy"), *rp, []string{string(corev1.ContainerRestartPolicyAlways)}))
		default:
			sidecar = true
		}
	}
	if init && !sidecar {
		for name, probe := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
			if probe != nil {
				errs = append(errs, field.Forbidden(p.Child(name), "may not be set for init containers without restartPolicy=Always"))
			}
		}
	}

	ports := map[string]bool{}
	for i, port := range c.Ports {
		pp := p.Child("ports").Index(i)
		for _, msg := range validation.IsValidPortNum(int(port.ContainerPort)) {
			errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort, msg))
		}
		if port.Name != "" {
			for _, msg := range validation.IsValidPortName(port.Name) {
				errs = append(errs, field.Invalid(pp.Child("name"), port.Name, msg))
			}
			if ports[port.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			ports[port.Name] = true
		}
	}

	for i, e := range c.Env {
		ep := p.Child("env").Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(ep.Child("name"), ""))
		}
		if vf := e.ValueFrom; vf != nil {
			if e.Value != "" {
				errs = append(errs, field.Invalid(ep.Child("valueFrom"), "", "may not be specified when `value` is not empty"))
			}
			if n := countSet(*vf); n != 1 {
				errs = append(errs, field.Invalid(ep.Child("valueFrom"), "", fmt.Sprintf("must specify exactly one source, got %d", n)))
			}
			if r := vf.SecretKeyRef; r != nil && (r.Name == "" || r.Key == "") {
				errs = append(errs, field.Required(ep.Child("valueFrom", "secretKeyRef"), "name and key"))
			}
			if r := vf.ConfigMapKeyRef; r != nil && (r.Name == "" || r.Key == "") {
				errs = append(errs, field.Required(ep.Child("valueFrom", "configMapKeyRef"), "name and key"))
			}
		}
	}

	mounts := map[string]bool{}
	for i, m := range c.VolumeMounts {
		mp := p.Child("volumeMounts").Index(i)
		if !volumes[m.Name] {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		case !path.IsAbs(m.MountPath):
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be an absolute path"))
		case mounts[m.MountPath]:
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		}
		mounts[m.MountPath] = true
		if strings.Contains(m.SubPath, "..") || path.IsAbs(m.SubPath) {
			errs = append(errs, field.Invalid(mp.Child("subPath"), m.SubPath, "must be a relative path without '..'"))
		}
	}

	errs = append(errs, validateProbe(c.LivenessProbe, true, ports, p.Child("livenessProbe"))...)
	errs = append(errs, validateProbe(c.StartupProbe, true, ports, p.Child("startupProbe"))...)
	errs = append(errs, validateProbe(c.ReadinessProbe, false, ports, p.Child("readinessProbe"))...)

	if sc := c.SecurityContext; sc != nil {
		errs = append(errs, validateIDs(p.Child("securityContext"), sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot)...)
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			if sc.Privileged != nil && *sc.Privileged {
				errs = append(errs, field.Invalid(p.Child("securityContext"), "", "cannot set allowPrivilegeEscalation to false and privileged to true"))
			}
			if caps := sc.Capabilities; caps != nil {
				for _, a := range caps.Add {
					if a == "CAP_SYS_ADMIN" || a == "SYS_ADMIN" {
						errs = append(errs, field.Invalid(p.Child("securityContext"), "", "cannot set allowPrivilegeEscalation to false and capabilities.Add CAP_SYS_ADMIN"))
					}
				}
			}
		}
		if sp := sc.SeccompProfile; sp != nil {
			switch sp.Type {
			case corev1.SeccompProfileTypeLocalhost:
				if sp.LocalhostProfile == nil || *sp.LocalhostProfile == "" {
					errs = append(errs, field.Required(p.Child("securityContext", "seccompProfile", "localhostProfile"), "for type Localhost"))
				}
			case corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined:
			default:
				errs = append(errs, field.NotSupported(p.Child("securityContext", "seccompProfile", "type"), sp.Type,
					[]string{"Localhost", "RuntimeDefault", "Unconfined"}))
			}
		}
	}
	return errs
}

func validateProbe(pr *corev1.Probe, successMustBeOne bool, ports map[string]bool, p *field.Path) field.ErrorList {
	if pr == nil {
		return nil
	}
	var errs field.ErrorList
	if n := countSet(pr.ProbeHandler); n != 1 {
		errs = append(errs, field.Invalid(p, "", fmt.Sprintf("must specify exactly one handler (exec, httpGet, tcpSocket, grpc), got %d", n)))
	}
	if pr.Exec != nil && len(pr.Exec.Command) == 0 {
		errs = append(errs, field.Required(p.Child("exec", "command"), ""))
	}
	if pr.GRPC != nil {
		for _, msg := range validation.IsValidPortNum(int(pr.GRPC.Port)) {
			errs = append(errs, field.Invalid(p.Child("grpc", "port"), pr.GRPC.Port, msg))
		}
	}
	if pr.TCPSocket != nil {
		errs = append(errs, validateProbePort(pr.TCPSocket.Port, ports, p.Child("tcpSocket", "port"))...)
	}
	if pr.HTTPGet != nil {
		errs = append(errs, validateProbePort(pr.HTTPGet.Port, ports, p.Child("httpGet", "port"))...)
	}
	for name, v := range map[string]int32{"initialDelaySeconds": pr.InitialDelaySeconds, "timeoutSeconds": pr.TimeoutSeconds,
		"periodSeconds": pr.PeriodSeconds, "successThreshold": pr.SuccessThreshold, "failureThreshold": pr.FailureThreshold} {
		if v < 0 {
			errs = append(errs, field.Invalid(p.Child(name), v, "must be >= 0"))
		}
	}
	if successMustBeOne && pr.SuccessThreshold > 1 {
		errs = append(errs, field.Invalid(p.Child("successThreshold"), pr.SuccessThreshold, "must be 1"))
	}
	return errs
}

// validateProbePort checks a probe's port: a number, or the name of one of
// the container's ports (a name the container does not declare is accepted
// by the API server, and fails at run time).
func validateProbePort(port intstr.IntOrString, ports map[string]bool, p *field.Path) field.ErrorList {
	if port.Type == intstr.Int {
		var errs field.ErrorList
		for _, msg := range validation.IsValidPortNum(port.IntValue()) {
			errs = append(errs, field.Invalid(p, port.IntValue(), msg))
		}
		return errs
	}
	if !ports[port.StrVal] {
		return field.ErrorList{field.NotFound(p, port.StrVal)}
	}
	return nil
}

func validateIDs(p *field.Path, user, group *int64, nonRoot *bool) field.ErrorList {
	var errs field.ErrorList
	if user != nil && *user < 0 {
		errs = append(errs, field.Invalid(p.Child("runAsUser"), *user, "must be >= 0"))
	}
	if group != nil && *group < 0 {
		errs = append(errs, field.Invalid(p.Child("runAsGroup"), *group, "must be >= 0"))
	}
	if nonRoot != nil && *nonRoot && user != nil && *user == 0 {
		errs = append(errs, field.Invalid(p.Child("runAsUser"), *user, "runAsNonRoot is true: the kubelet refuses to start a container as user 0"))
	}
	return errs
}

func validateMode(p *field.Path, mode *int32) field.ErrorList {
	if mode != nil && (*mode < 0 || *mode > 0o777) {
		return field.ErrorList{field.Invalid(p, *mode, "must be a number between 0 and 0777 (octal), both inclusive")}
	}
	return nil
}

func validateItems(p *field.Path, items []corev1.KeyToPath) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(ip.Child("key"), ""))
		}
		if it.Path == "" || path.IsAbs(it.Path) || strings.Contains(it.Path, "..") {
			errs = append(errs, field.Invalid(ip.Child("path"), it.Path, "must be a non-empty relative path without '..'"))
		}
		errs = append(errs, validateMode(ip.Child("mode"), it.Mode)...)
	}
	return errs
}

func dnsLabel(p *field.Path, v string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

// countSet counts the fields of a struct of pointers (a "one of" such as
// VolumeSource or ProbeHandler) that are set.
func countSet(v any) int {
	rv := reflect.ValueOf(v)
	n := 0
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		if f.Kind() == reflect.Pointer && !f.IsNil() {
			n++
		}
	}
	return n
}
