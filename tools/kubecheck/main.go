// Command kubecheck validates Kubernetes manifests offline, against the API
// types compiled into client-go and the Prometheus Operator's
// monitoring.coreos.com/v1 types (no cluster, no downloaded schemas).
//
//	helm template charts/zklock | kubecheck
//	kubecheck [-allow-empty] [-targets] [FILE...]
//
// It reads YAML documents (separated by ---) from the files, or from stdin,
// and for each document that is not empty:
//
//  1. converts it to JSON, refusing duplicate keys;
//  2. decodes it strictly with client-go's scheme: an unknown kind or
//     apiVersion, an unknown field, a duplicate field or a value of the
//     wrong type is an error;
//  3. type-checks it, as found and as decoded, with the structured-merge-diff
//     schema of applyconfigurations' type converter (what server-side apply
//     uses); client-go has no such schema for monitoring.coreos.com kinds,
//     which steps 2 and 4 check alone;
//  4. runs a few checks of the API server's validation that decoding does
//     not do: names, label selectors that match their pod template,
//     container, port and volume names, volume mounts that name a volume,
//     probes with exactly one handler, restartPolicy only on init
//     containers; and for PrometheusRule, ServiceMonitor and PodMonitor
//     what the Prometheus Operator's CRD schemas and admission webhook
//     check: PromQL that parses, durations, label names, selectors, one
//     port per endpoint.
//
// With -targets it also checks, across all the documents, that each Service
// with a selector selects a pod template of the input that has its named
// targetPorts, that each ServiceMonitor selects such a Service and names
// one of its ports, and that each PodMonitor selects a pod template with
// its port: a monitor that would scrape nothing fails.
//
// Each error names the document (its number, helm's "# Source:" comment
// when present, its kind and name). It prints "kubecheck: N documents OK"
// and exits 0, or prints the errors and exits 1. No document at all is an
// error unless -allow-empty is given.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/managedfields"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/applyconfigurations"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)

func main() {
	allowEmpty := flag.Bool("allow-empty", false, "accept input without any document")
	targets := flag.Bool("targets", false, "check that Services, ServiceMonitors and PodMonitors select something of the input")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: kubecheck [-allow-empty] [-targets] [FILE...]   (stdin when no FILE)")
		flag.PrintDefaults()
	}
	flag.Parse()

	c := newChecker()
	var docs, failed int
	check := func(name string, r io.Reader) error {
		n, f, err := c.checkStream(name, r, os.Stderr)
		docs += n
		failed += f
		return err
	}
	if flag.NArg() == 0 {
		if err := check("stdin", os.Stdin); err != nil {
			fatal(err)
		}
	}
	for _, path := range flag.Args() {
		f, err := os.Open(path)
		if err != nil {
			fatal(err)
		}
		err = check(path, f)
		f.Close()
		if err != nil {
			fatal(err)
		}
	}
	if *targets {
		errs := checkTargets(c.objects)
		for _, err := range errs {
			fmt.Fprintf(os.Stderr, "FAIL targets: %s\n", err)
		}
		if len(errs) > 0 {
			fatal(fmt.Errorf("%d selectors find nothing to scrape or serve", len(errs)))
		}
	}
	switch {
	case failed > 0:
		fmt.Fprintf(os.Stderr, "kubecheck: %d of %d documents FAILED\n", failed, docs)
		os.Exit(1)
	case docs == 0 && !*allowEmpty:
		fatal(errors.New("no document found (use -allow-empty if that is expected)"))
	}
	fmt.Printf("kubecheck: %d documents OK\n", docs)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "kubecheck:", err)
	os.Exit(1)
}

type checker struct {
	decoder   runtime.Decoder
	converter managedfields.TypeConverter
	objects   []runtime.Object // every object decoded, for -targets
}

func newChecker() *checker {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return &checker{
		decoder:   serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer(),
		converter: applyconfigurations.NewTypeConverter(scheme),
	}
}

var sourceComment = regexp.MustCompile(`(?m)^#\s*Source:\s*(\S+)`)

// checkStream checks every document of r, writing one report per failed
// document to w. It returns how many documents it checked and how many
// failed, and an error only when r cannot be read or split.
func (c *checker) checkStream(name string, r io.Reader, w io.Writer) (docs, failed int, err error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for i := 1; ; i++ {
		raw, err := yr.Read()
		if err == io.EOF {
			return docs, failed, nil
		}
		if err != nil {
			return docs, failed, fmt.Errorf("%s: reading document %d: %w", name, i, err)
		}
		label := fmt.Sprintf("%s: document %d", name, i)
		if m := sourceComment.FindSubmatch(raw); m != nil {
			label += fmt.Sprintf(" (%s)", m[1])
		}
		id, errs, empty := c.checkDocument(raw)
		if empty {
			continue
		}
		docs++
		if id != "" {
			label += " " + id
		}
		if len(errs) > 0 {
			failed++
			fmt.Fprintf(w, "FAIL %s:\n", label)
			for _, e := range errs {
				fmt.Fprintf(w, "  - %s\n", strings.ReplaceAll(e.Error(), "\n", "\n    "))
			}
		}
	}
}

// checkDocument checks one YAML document. It returns the document's
// "Kind/name", its errors, and empty=true for a document with nothing in it
// (only comments or whitespace).
func (c *checker) checkDocument(raw []byte) (id string, errs []error, empty bool) {
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return "", []error{fmt.Errorf("not valid YAML: %w", err)}, false
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || string(js) == "null" {
		return "", nil, true
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return "", []error{fmt.Errorf("not a Kubernetes object: %w", err)}, false
	}
	id = u.GetKind() + "/" + u.GetName()

	obj, gvk, err := c.decoder.Decode(js, nil, nil)
	if err != nil {
		// A strict decoding error still returns the object; any error fails.
		errs = append(errs, fmt.Errorf("decoding %s: %w", describeGVK(u), err))
		if obj == nil || !runtime.IsStrictDecodingError(err) {
			return id, errs, false
		}
	}
	if gvk.Group != monitoringv1.SchemeGroupVersion.Group {
		if _, err := c.converter.ObjectToTyped(u); err != nil {
			errs = append(errs, fmt.Errorf("type check of %s as written: %w", gvk, err))
		}
		if _, err := c.converter.ObjectToTyped(obj); err != nil {
			errs = append(errs, fmt.Errorf("type check of %s as decoded: %w", gvk, err))
		}
	}
	errs = append(errs, validate(obj)...)
	c.objects = append(c.objects, obj)
	return id, errs, false
}

func describeGVK(u *unstructured.Unstructured) string {
	if u.GetAPIVersion() == "" && u.GetKind() == "" {
		return "a document without apiVersion and kind"
	}
	return fmt.Sprintf("apiVersion %q kind %q", u.GetAPIVersion(), u.GetKind())
}
